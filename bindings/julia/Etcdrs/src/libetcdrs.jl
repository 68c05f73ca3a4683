# The raw layer: one Julia function per C function of include/etcdrs.h that the package
# uses, named as in C, with the C types exactly (checked against the header by
# bindings/julia/check). Handles are Ptr{Cvoid}; text goes in as Ptr{UInt8} + length;
# out-parameters are Ref cells. Nothing here owns anything: the layer above frees.
module LibEtcdrs

import Libdl

const ETCDRS_OK = UInt32(0)
const ETCDRS_NO_TTL = Int64(-1)
const ETCDRS_LOCK_FIELD_VALUE = UInt32(0)
const ETCDRS_LOCK_FIELD_INDEX = UInt32(1)
const ETCDRS_CODE_KEY_NOT_FOUND = UInt32(100)
const ETCDRS_CODE_TIMEOUT = UInt32(1003)
const ETCDRS_CODE_CANCELLED = UInt32(1009)

# etcdrs_str: borrowed text, `len` bytes at `data` (not NUL-terminated).
struct EtcdrsStr
    data::Ptr{UInt8}
    len::Csize_t
end

const HANDLE = Ref{Ptr{Cvoid}}(C_NULL)
const SYMBOLS = Dict{Symbol,Ptr{Cvoid}}()
const SYMBOLS_LOCK = ReentrantLock()

# Where libetcdrs is: ENV["ETCDRS_LIB"], then the prefix scripts/install-libetcdrs.sh
# installed into (pkg-config), then this repository's release build.
function find_library()
    tried = String[]
    env = get(ENV, "ETCDRS_LIB", "")
    if !isempty(env)
        isfile(env) && return env
        push!(tried, "ETCDRS_LIB=$env (no such file)")
    else
        push!(tried, "ETCDRS_LIB (not set)")
    end
    name = "libetcdrs." * Libdl.dlext
    libdir = try
        readchomp(pipeline(`pkg-config --variable=libdir etcdrs`; stderr=devnull))
    catch
        ""
    end
    if !isempty(libdir) && isfile(joinpath(libdir, name))
        return joinpath(libdir, name)
    end
    push!(tried, "pkg-config etcdrs (scripts/install-libetcdrs.sh PREFIX): " *
                 (isempty(libdir) ? "not found" : "no $name in $libdir"))
    repo = normpath(joinpath(@__DIR__, "..", "..", "..", ".."))
    target = try
        readchomp(pipeline(`$(joinpath(repo, "scripts", "target-dir.sh"))`; stderr=devnull))
    catch
        joinpath(repo, "target")
    end
    built = joinpath(target, "release", name)
    isfile(built) && return built
    push!(tried, "the repository's release build: no $built (cargo build --release -p etcdrs-ffi)")
    error("libetcdrs not found; tried:\n  " * join(tried, "\n  "))
end

# The address of C function `name` (looked up once).
function fn(name::Symbol)
    lock(SYMBOLS_LOCK) do
        get!(SYMBOLS, name) do
            if HANDLE[] == C_NULL
                HANDLE[] = Libdl.dlopen(find_library())
            end
            Libdl.dlsym(HANDLE[], name)
        end
    end
end

etcdrs_version() = ccall(fn(:etcdrs_version), Ptr{UInt8}, ())

etcdrs_string_free(s) = ccall(fn(:etcdrs_string_free), Cvoid, (Ptr{UInt8},), s)

etcdrs_error_code(e) = ccall(fn(:etcdrs_error_code), UInt32, (Ptr{Cvoid},), e)

etcdrs_error_message(e) = ccall(fn(:etcdrs_error_message), EtcdrsStr, (Ptr{Cvoid},), e)

etcdrs_error_cause(e) = ccall(fn(:etcdrs_error_cause), EtcdrsStr, (Ptr{Cvoid},), e)

etcdrs_error_index(e) = ccall(fn(:etcdrs_error_index), UInt64, (Ptr{Cvoid},), e)

etcdrs_error_free(e) = ccall(fn(:etcdrs_error_free), Cvoid, (Ptr{Cvoid},), e)

etcdrs_client_new(endpoints, endpoints_len, timeout_ms, client_out, error_out) =
    ccall(fn(:etcdrs_client_new), UInt32,
          (Ptr{UInt8}, Csize_t, UInt64, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          endpoints, endpoints_len, timeout_ms, client_out, error_out)

etcdrs_client_new_auth(endpoints, endpoints_len, timeout_ms, ca_file, ca_file_len, cert_file,
                       cert_file_len, key_file, key_file_len, insecure_skip_verify, user,
                       user_len, password, password_len, client_out, error_out) =
    ccall(fn(:etcdrs_client_new_auth), UInt32,
          (Ptr{UInt8}, Csize_t, UInt64, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Ptr{UInt8},
           Csize_t, Bool, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Ptr{Ptr{Cvoid}},
           Ptr{Ptr{Cvoid}}),
          endpoints, endpoints_len, timeout_ms, ca_file, ca_file_len, cert_file, cert_file_len,
          key_file, key_file_len, insecure_skip_verify, user, user_len, password, password_len,
          client_out, error_out)

etcdrs_client_free(client) = ccall(fn(:etcdrs_client_free), Cvoid, (Ptr{Cvoid},), client)

etcdrs_client_get(client, key, key_len, recursive, sorted, quorum, response_out, error_out) =
    ccall(fn(:etcdrs_client_get), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Bool, Bool, Bool, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          client, key, key_len, recursive, sorted, quorum, response_out, error_out)

etcdrs_client_set(client, key, key_len, value, value_len, ttl_seconds, response_out, error_out) =
    ccall(fn(:etcdrs_client_set), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Int64, Ptr{Ptr{Cvoid}},
           Ptr{Ptr{Cvoid}}),
          client, key, key_len, value, value_len, ttl_seconds, response_out, error_out)

etcdrs_client_create(client, key, key_len, value, value_len, ttl_seconds, response_out,
                     error_out) =
    ccall(fn(:etcdrs_client_create), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Int64, Ptr{Ptr{Cvoid}},
           Ptr{Ptr{Cvoid}}),
          client, key, key_len, value, value_len, ttl_seconds, response_out, error_out)

etcdrs_client_create_dir(client, key, key_len, ttl_seconds, response_out, error_out) =
    ccall(fn(:etcdrs_client_create_dir), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Int64, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          client, key, key_len, ttl_seconds, response_out, error_out)

etcdrs_client_update(client, key, key_len, value, value_len, ttl_seconds, response_out,
                     error_out) =
    ccall(fn(:etcdrs_client_update), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Int64, Ptr{Ptr{Cvoid}},
           Ptr{Ptr{Cvoid}}),
          client, key, key_len, value, value_len, ttl_seconds, response_out, error_out)

etcdrs_client_update_dir(client, key, key_len, ttl_seconds, response_out, error_out) =
    ccall(fn(:etcdrs_client_update_dir), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Int64, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          client, key, key_len, ttl_seconds, response_out, error_out)

etcdrs_client_compare_and_swap(client, key, key_len, value, value_len, prev_value,
                               prev_value_len, prev_index, ttl_seconds, response_out,
                               error_out) =
    ccall(fn(:etcdrs_client_compare_and_swap), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, UInt64,
           Int64, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          client, key, key_len, value, value_len, prev_value, prev_value_len, prev_index,
          ttl_seconds, response_out, error_out)

etcdrs_client_compare_and_delete(client, key, key_len, prev_value, prev_value_len, prev_index,
                                 response_out, error_out) =
    ccall(fn(:etcdrs_client_compare_and_delete), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, UInt64, Ptr{Ptr{Cvoid}},
           Ptr{Ptr{Cvoid}}),
          client, key, key_len, prev_value, prev_value_len, prev_index, response_out,
          error_out)

etcdrs_client_delete(client, key, key_len, response_out, error_out) =
    ccall(fn(:etcdrs_client_delete), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          client, key, key_len, response_out, error_out)

etcdrs_client_delete_dir(client, key, key_len, recursive, response_out, error_out) =
    ccall(fn(:etcdrs_client_delete_dir), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Bool, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          client, key, key_len, recursive, response_out, error_out)

etcdrs_client_exists(client, key, key_len, exists_out, error_out) =
    ccall(fn(:etcdrs_client_exists), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{Bool}, Ptr{Ptr{Cvoid}}),
          client, key, key_len, exists_out, error_out)

etcdrs_client_machines(client, text_out, error_out) =
    ccall(fn(:etcdrs_client_machines), UInt32,
          (Ptr{Cvoid}, Ptr{Ptr{UInt8}}, Ptr{Ptr{Cvoid}}), client, text_out, error_out)

etcdrs_client_stats(client, kind, kind_len, json_out, error_out) =
    ccall(fn(:etcdrs_client_stats), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{Ptr{UInt8}}, Ptr{Ptr{Cvoid}}),
          client, kind, kind_len, json_out, error_out)

# Waits for the lock: run on a libuv pool thread, so the Julia scheduler goes on.
etcdrs_client_lock_acquire(client, name_ptr, name_len, ttl_seconds, value, value_len,
                           timeout_seconds, index_out, error_out) =
    @threadcall(fn(:etcdrs_client_lock_acquire), UInt32,
                (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, UInt64, Ptr{UInt8}, Csize_t, Int64,
                 Ptr{UInt64}, Ptr{Ptr{Cvoid}}),
                client, name_ptr, name_len, ttl_seconds, value, value_len, timeout_seconds,
                index_out, error_out)

etcdrs_client_lock_retrieve(client, name_ptr, name_len, field, text_out, error_out) =
    ccall(fn(:etcdrs_client_lock_retrieve), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, UInt32, Ptr{Ptr{UInt8}}, Ptr{Ptr{Cvoid}}),
          client, name_ptr, name_len, field, text_out, error_out)

etcdrs_client_lock_renew(client, name_ptr, name_len, index, value, value_len, ttl_seconds,
                         error_out) =
    ccall(fn(:etcdrs_client_lock_renew), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, UInt64, Ptr{UInt8}, Csize_t, UInt64,
           Ptr{Ptr{Cvoid}}),
          client, name_ptr, name_len, index, value, value_len, ttl_seconds, error_out)

etcdrs_client_lock_release(client, name_ptr, name_len, index, value, value_len, error_out) =
    ccall(fn(:etcdrs_client_lock_release), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, UInt64, Ptr{UInt8}, Csize_t, Ptr{Ptr{Cvoid}}),
          client, name_ptr, name_len, index, value, value_len, error_out)

# Waits while another leads: on a libuv pool thread, as the lock acquire.
etcdrs_client_set_leader(client, name_ptr, name_len, leader, leader_len, ttl_seconds,
                         timeout_seconds, index_out, error_out) =
    @threadcall(fn(:etcdrs_client_set_leader), UInt32,
                (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, UInt64, Int64,
                 Ptr{UInt64}, Ptr{Ptr{Cvoid}}),
                client, name_ptr, name_len, leader, leader_len, ttl_seconds, timeout_seconds,
                index_out, error_out)

etcdrs_client_get_leader(client, name_ptr, name_len, text_out, error_out) =
    ccall(fn(:etcdrs_client_get_leader), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{Ptr{UInt8}}, Ptr{Ptr{Cvoid}}),
          client, name_ptr, name_len, text_out, error_out)

etcdrs_client_delete_leader(client, name_ptr, name_len, leader, leader_len, error_out) =
    ccall(fn(:etcdrs_client_delete_leader), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Ptr{Ptr{Cvoid}}),
          client, name_ptr, name_len, leader, leader_len, error_out)

etcdrs_client_watch_stream(client, key, key_len, wait_index, recursive, watch_out, error_out) =
    ccall(fn(:etcdrs_client_watch_stream), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, UInt64, Bool, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          client, key, key_len, wait_index, recursive, watch_out, error_out)

etcdrs_watch_next(watch, timeout_ms, response_out, error_out) =
    ccall(fn(:etcdrs_watch_next), UInt32,
          (Ptr{Cvoid}, UInt64, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          watch, timeout_ms, response_out, error_out)

etcdrs_watch_cancel(watch) = ccall(fn(:etcdrs_watch_cancel), Cvoid, (Ptr{Cvoid},), watch)

etcdrs_watch_free(watch) = ccall(fn(:etcdrs_watch_free), Cvoid, (Ptr{Cvoid},), watch)

etcdrs_response_json(r) = ccall(fn(:etcdrs_response_json), EtcdrsStr, (Ptr{Cvoid},), r)

etcdrs_response_free(r) = ccall(fn(:etcdrs_response_free), Cvoid, (Ptr{Cvoid},), r)

etcdrs_config_new(name, name_len, data_dir, data_dir_len, config_out, error_out) =
    ccall(fn(:etcdrs_config_new), UInt32,
          (Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          name, name_len, data_dir, data_dir_len, config_out, error_out)

etcdrs_config_set(config, flag, flag_len, value, value_len, error_out) =
    ccall(fn(:etcdrs_config_set), UInt32,
          (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{UInt8}, Csize_t, Ptr{Ptr{Cvoid}}),
          config, flag, flag_len, value, value_len, error_out)

etcdrs_config_free(config) = ccall(fn(:etcdrs_config_free), Cvoid, (Ptr{Cvoid},), config)

# Starting binds ports and opens the log; for a member of a larger cluster it returns at
# once. On a pool thread, so a starting member does not hold up other tasks.
etcdrs_node_start(config, node_out, error_out) =
    @threadcall(fn(:etcdrs_node_start), UInt32, (Ptr{Cvoid}, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
                config, node_out, error_out)

etcdrs_node_wait_ready(node, timeout_ms, error_out) =
    @threadcall(fn(:etcdrs_node_wait_ready), UInt32, (Ptr{Cvoid}, UInt64, Ptr{Ptr{Cvoid}}),
                node, timeout_ms, error_out)

etcdrs_node_failure(node, error_out) =
    ccall(fn(:etcdrs_node_failure), UInt32, (Ptr{Cvoid}, Ptr{Ptr{Cvoid}}), node, error_out)

etcdrs_node_member_id(node) = ccall(fn(:etcdrs_node_member_id), UInt64, (Ptr{Cvoid},), node)

etcdrs_node_client_urls(node) =
    ccall(fn(:etcdrs_node_client_urls), EtcdrsStr, (Ptr{Cvoid},), node)

etcdrs_node_client(node, client_out, error_out) =
    ccall(fn(:etcdrs_node_client), UInt32, (Ptr{Cvoid}, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}),
          node, client_out, error_out)

etcdrs_node_stop(node, error_out) =
    @threadcall(fn(:etcdrs_node_stop), UInt32, (Ptr{Cvoid}, Ptr{Ptr{Cvoid}}), node, error_out)

etcdrs_node_free(node) = ccall(fn(:etcdrs_node_free), Cvoid, (Ptr{Cvoid},), node)

end # module LibEtcdrs
