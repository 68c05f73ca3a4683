"""
    Etcdrs

Etcd.jl's API on etcdrs's core, through `ccall` into libetcdrs: a client of any
etcd-compatible cluster (`EtcdServer(host, port)`) or of a member started inside this Julia
process (`start_node`, then `EtcdServer(node)`). Results are `Dict`s shaped like etcd's
JSON; errors are thrown as `EtcdError`.
"""
module Etcdrs

import JSON

include("libetcdrs.jl")
using .LibEtcdrs

export EtcdServer, EtcdError, EtcdNode, start_node, stop, client_urls

# -- errors ------------------------------------------------------------------------------

"""
    EtcdError(errorCode, message, cause, index)

An error etcd (or etcdrs) answered: etcd's errorCode (etcdrs's own codes from 1000),
message, cause and index.
"""
struct EtcdError <: Exception
    errorCode::Int
    message::String
    cause::String
    index::UInt64
end

Base.showerror(io::IO, e::EtcdError) =
    print(io, "EtcdError ", e.errorCode, ": ", e.message, isempty(e.cause) ? "" : " ($(e.cause))",
          " [index ", e.index, "]")

text(s::EtcdrsStr) = s.data == C_NULL ? "" : unsafe_string(s.data, s.len)

# The error object as an EtcdError; the object is freed.
function take_error(err::Ptr{Cvoid})
    e = EtcdError(Int(etcdrs_error_code(err)), text(etcdrs_error_message(err)),
                  text(etcdrs_error_cause(err)), etcdrs_error_index(err))
    etcdrs_error_free(err)
    return e
end

# Throw the call's error unless it succeeded.
function check(status::UInt32, err::Ref{Ptr{Cvoid}})
    status == ETCDRS_OK && return nothing
    throw(take_error(err[]))
end

# A response as etcd's JSON in a Dict; the response is freed.
function response_dict(r::Ptr{Cvoid})
    d = JSON.parse(text(etcdrs_response_json(r)))
    etcdrs_response_free(r)
    return d
end

# A string the library returned; it is freed.
function take_string(p::Ptr{UInt8})
    s = p == C_NULL ? "" : unsafe_string(p)
    etcdrs_string_free(p)
    return s
end

ttl_arg(ttl) = ttl === nothing ? ETCDRS_NO_TTL : Int64(ttl)

# An out-parameter for a handle (or an error object).
handle_ref() = Ref{Ptr{Cvoid}}(C_NULL)

# An optional text for the C ABI: (pointer, length), NULL when absent.
text_or_null(::Nothing) = (C_NULL, 0)
text_or_null(s::AbstractString) = (String(s), sizeof(s))

# -- the client --------------------------------------------------------------------------

"""
    EtcdNode

A member running in this Julia process; `stop` stops it (the garbage collector frees it).
"""
mutable struct EtcdNode
    ptr::Ptr{Cvoid}
    name::String
    member_id::UInt64
    client_urls::Vector{String}
end


"""
    EtcdServer(host="127.0.0.1", port=4001, version="v2"; protocol="http", ca_file=nothing,
               cert_file=nothing, key_file=nothing, insecure_skip_verify=false,
               user=nothing, password=nothing)
    EtcdServer(node::EtcdNode)

A client of the etcd cluster at `host:port` (over HTTP, or HTTPS with `protocol="https"`
and a CA file to check the members' certificates; `cert_file` and `key_file` for members
that require a client certificate), or of a member running in this process (no HTTP).
`user` and `password` go as HTTP Basic credentials to members with auth enabled. `close`
frees it; so does the garbage collector.
"""
mutable struct EtcdServer
    host::String
    port::Int
    version::String
    client::Ptr{Cvoid}
    node::Union{Nothing,EtcdNode}   # the member an in-process client belongs to

    function EtcdServer(host::AbstractString="127.0.0.1", port::Integer=4001,
                        version::AbstractString="v2"; protocol::AbstractString="http",
                        ca_file=nothing, cert_file=nothing, key_file=nothing,
                        insecure_skip_verify::Bool=false, user=nothing, password=nothing)
        endpoints = "$protocol://$host:$port"
        out = handle_ref()
        err = handle_ref()
        ca, cert, key, u, pw = text_or_null.((ca_file, cert_file, key_file, user, password))
        check(etcdrs_client_new_auth(endpoints, sizeof(endpoints), UInt64(0), ca...,
                                     cert..., key..., insecure_skip_verify, u..., pw...,
                                     out, err), err)
        etcd = new(String(host), Int(port), String(version), out[], nothing)
        finalizer(close, etcd)
        return etcd
    end

    function EtcdServer(node::EtcdNode)
        out = handle_ref()
        err = handle_ref()
        check(etcdrs_node_client(node.ptr, out, err), err)
        url = split(node.client_urls[1], "://")[end]
        host, port = rsplit(url, ":"; limit=2)
        etcd = new(String(host), parse(Int, port), "v2", out[], node)
        finalizer(close, etcd)
        return etcd
    end
end

Base.show(io::IO, e::EtcdServer) = print(io, "EtcdServer(\"", e.host, "\",", e.port, ",\"", e.version, "\")")

"""
    close(etcd::EtcdServer)

Free the client (idempotent).
"""
function Base.close(etcd::EtcdServer)
    if etcd.client != C_NULL
        etcdrs_client_free(etcd.client)
        etcd.client = C_NULL
    end
    return nothing
end

function client(etcd::EtcdServer)
    etcd.client == C_NULL && throw(EtcdError(1012, "Invalid argument", "the client is closed", 0))
    return etcd.client
end

"""
    set(etcd, key, value; ttl=nothing)

Set a key's value, creating or replacing it.
"""
function set(etcd::EtcdServer, key::AbstractString, value::AbstractString; ttl=nothing)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_set(client(etcd), key, sizeof(key), value, sizeof(value), ttl_arg(ttl), out, err), err)
    return response_dict(out[])
end

"""
    get(etcd, key; recursive=false, sorted=false, quorum=false)

Read a key or a directory.
"""
function get(etcd::EtcdServer, key::AbstractString; recursive::Bool=false, sorted::Bool=false,
             quorum::Bool=false)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_get(client(etcd), key, sizeof(key), recursive, sorted, quorum, out, err), err)
    return response_dict(out[])
end

"""
    create(etcd, key, value; ttl=nothing)

Create a key that must not exist yet.
"""
function create(etcd::EtcdServer, key::AbstractString, value::AbstractString; ttl=nothing)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_create(client(etcd), key, sizeof(key), value, sizeof(value), ttl_arg(ttl), out, err), err)
    return response_dict(out[])
end

"""
    create_dir(etcd, key; ttl=nothing)

Create a directory that must not exist yet.
"""
function create_dir(etcd::EtcdServer, key::AbstractString; ttl=nothing)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_create_dir(client(etcd), key, sizeof(key), ttl_arg(ttl), out, err), err)
    return response_dict(out[])
end

"""
    update(etcd, key, value; ttl=nothing)

Change a key that must exist.
"""
function update(etcd::EtcdServer, key::AbstractString, value::AbstractString; ttl=nothing)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_update(client(etcd), key, sizeof(key), value, sizeof(value), ttl_arg(ttl), out, err), err)
    return response_dict(out[])
end

"""
    update_dir(etcd, key; ttl=nothing)

Change an existing directory's TTL.
"""
function update_dir(etcd::EtcdServer, key::AbstractString; ttl=nothing)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_update_dir(client(etcd), key, sizeof(key), ttl_arg(ttl), out, err), err)
    return response_dict(out[])
end

"""
    compare_and_swap(etcd, key, value; prev_value=nothing, prev_index=nothing, ttl=nothing)

Set `value` only if the key's value is `prev_value` and/or its modifiedIndex `prev_index`.
`test_and_set` is the same function.
"""
function compare_and_swap(etcd::EtcdServer, key::AbstractString, value::AbstractString;
                          prev_value=nothing, prev_index=nothing, ttl=nothing)
    pv = prev_value === nothing ? C_NULL : String(prev_value)
    pv_len = prev_value === nothing ? 0 : sizeof(prev_value)
    pi = prev_index === nothing ? UInt64(0) : UInt64(prev_index)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_compare_and_swap(client(etcd), key, sizeof(key), value, sizeof(value), pv,
                                       pv_len, pi, ttl_arg(ttl), out, err), err)
    return response_dict(out[])
end

const test_and_set = compare_and_swap

"""
    compare_and_delete(etcd, key; prev_value=nothing, prev_index=nothing)

Delete a key only if its value is `prev_value` and/or its modifiedIndex `prev_index`.
"""
function compare_and_delete(etcd::EtcdServer, key::AbstractString; prev_value=nothing,
                            prev_index=nothing)
    pv = prev_value === nothing ? C_NULL : String(prev_value)
    pv_len = prev_value === nothing ? 0 : sizeof(prev_value)
    pi = prev_index === nothing ? UInt64(0) : UInt64(prev_index)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_compare_and_delete(client(etcd), key, sizeof(key), pv, pv_len, pi, out, err), err)
    return response_dict(out[])
end

"""
    delete(etcd, key)

Delete a key.
"""
function delete(etcd::EtcdServer, key::AbstractString)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_delete(client(etcd), key, sizeof(key), out, err), err)
    return response_dict(out[])
end

"""
    delete_dir(etcd, key; recursive=false)

Delete a directory: an empty one, or everything below it when `recursive`.
"""
function delete_dir(etcd::EtcdServer, key::AbstractString; recursive::Bool=false)
    out, err = handle_ref(), handle_ref()
    check(etcdrs_client_delete_dir(client(etcd), key, sizeof(key), recursive, out, err), err)
    return response_dict(out[])
end

"""
    exists(etcd, key)

Whether a key or directory exists.
"""
function exists(etcd::EtcdServer, key::AbstractString)
    found = Ref{Bool}(false)
    err = handle_ref()
    check(etcdrs_client_exists(client(etcd), key, sizeof(key), found, err), err)
    return found[]
end

"""
    machines(etcd)

The cluster's client URLs, as etcd lists them: "http://a:2379, http://b:2379".
"""
function machines(etcd::EtcdServer)
    out = Ref{Ptr{UInt8}}(C_NULL)
    err = handle_ref()
    check(etcdrs_client_machines(client(etcd), out, err), err)
    return take_string(out[])
end

"""
    stats(etcd, kind)

Statistics as a Dict: `kind` is "store", "self" or "leader".
"""
function stats(etcd::EtcdServer, kind::AbstractString)
    out = Ref{Ptr{UInt8}}(C_NULL)
    err = handle_ref()
    check(etcdrs_client_stats(client(etcd), kind, sizeof(kind), out, err), err)
    return JSON.parse(take_string(out[]))
end

# -- watches: Tasks that poll ------------------------------------------------------------

# How long one poll of a watch may hold the Julia thread, and the pause between polls.
const WATCH_POLL_MS = UInt64(1)
const WATCH_PAUSE_S = 0.01

# Call `callback` with every change of `key` until `done(event)` says to stop. The watch is
# polled (etcdrs_watch_next with a 1 ms timeout, then `sleep`), so the Julia scheduler runs
# other tasks meanwhile, and a long-lived watch holds no thread of libuv's small pool.
function watch_loop(etcd::EtcdServer, key::AbstractString, callback, done;
                    recursive::Bool=false, wait_index=nothing)
    w = handle_ref()
    err = handle_ref()
    start = wait_index === nothing ? UInt64(0) : UInt64(wait_index)
    check(etcdrs_client_watch_stream(client(etcd), key, sizeof(key), start, recursive, w, err), err)
    try
        while true
            out = handle_ref()
            next_err = handle_ref()
            status = etcdrs_watch_next(w[], WATCH_POLL_MS, out, next_err)
            if status == ETCDRS_CODE_TIMEOUT
                etcdrs_error_free(next_err[])
                sleep(WATCH_PAUSE_S)
                continue
            end
            check(status, next_err)
            ev = response_dict(out[])
            callback(ev)
            done(ev) && return ev
        end
    finally
        etcdrs_watch_free(w[])
    end
end

"""
    watch(etcd, key, callback; recursive=false, wait_index=nothing) -> Task

Call `callback` with the next change of `key` (from `wait_index` on), in a Task.
"""
watch(etcd::EtcdServer, key::AbstractString, callback; kwargs...) =
    @async watch_loop(etcd, key, callback, ev -> true; kwargs...)

"""
    keep_watching(etcd, key, callback; recursive=false, wait_index=nothing) -> Task

Call `callback` with every change of `key`, in a Task, missing none between calls.
"""
keep_watching(etcd::EtcdServer, key::AbstractString, callback; kwargs...) =
    @async watch_loop(etcd, key, callback, ev -> false; kwargs...)

"""
    watch_until(etcd, key, callback, predicate; recursive=false, wait_index=nothing) -> Task

Call `callback` with every change of `key` until `predicate(event)` is true.
"""
watch_until(etcd::EtcdServer, key::AbstractString, callback, predicate; kwargs...) =
    @async watch_loop(etcd, key, callback, predicate; kwargs...)

# -- the leader and lock modules ---------------------------------------------------------

"""
    set_leader(etcd, key; name, ttl, timeout=-1)

Become (or stay) the leader of `key` as `name`; waits while another leads (on a libuv
thread: other tasks run). Answers the leadership's index as text.
"""
function set_leader(etcd::EtcdServer, key::AbstractString; name::AbstractString, ttl::Integer,
                    timeout::Integer=-1)
    index = Ref{UInt64}(0)
    err = handle_ref()
    check(etcdrs_client_set_leader(client(etcd), key, sizeof(key), name, sizeof(name),
                                   UInt64(ttl), Int64(timeout), index, err), err)
    return string(index[])
end

"""
    get_leader(etcd, key)

The leader of `key` ("" when none).
"""
function get_leader(etcd::EtcdServer, key::AbstractString)
    out = Ref{Ptr{UInt8}}(C_NULL)
    err = handle_ref()
    check(etcdrs_client_get_leader(client(etcd), key, sizeof(key), out, err), err)
    return take_string(out[])
end

"""
    delete_leader(etcd, key; name)

Give up the leadership of `key` held as `name`. Answers "".
"""
function delete_leader(etcd::EtcdServer, key::AbstractString; name::AbstractString)
    err = handle_ref()
    check(etcdrs_client_delete_leader(client(etcd), key, sizeof(key), name, sizeof(name), err), err)
    return ""
end

"""
    lock_acquire(etcd, name; ttl, value=nothing, timeout=-1)

Acquire lock `name`, waiting behind earlier requests (on a libuv thread: other tasks run);
answers the lock index as text.
"""
function lock_acquire(etcd::EtcdServer, name::AbstractString; ttl::Integer, value=nothing,
                      timeout::Integer=-1)
    v = value === nothing ? C_NULL : String(value)
    v_len = value === nothing ? 0 : sizeof(value)
    index = Ref{UInt64}(0)
    err = handle_ref()
    check(etcdrs_client_lock_acquire(client(etcd), name, sizeof(name), UInt64(ttl), v, v_len,
                                     Int64(timeout), index, err), err)
    return string(index[])
end

"""
    lock_retrieve(etcd, name; field="index")

The lock's holder: its index (as text, the default) or, with `field="value"`, its value.
"""
function lock_retrieve(etcd::EtcdServer, name::AbstractString; field::AbstractString="index")
    which = field == "value" ? ETCDRS_LOCK_FIELD_VALUE : ETCDRS_LOCK_FIELD_INDEX
    out = Ref{Ptr{UInt8}}(C_NULL)
    err = handle_ref()
    check(etcdrs_client_lock_retrieve(client(etcd), name, sizeof(name), which, out, err), err)
    return take_string(out[])
end

"""
    lock_renew(etcd, name; ttl, index=nothing, value=nothing)

Renew the lock held under `index` or `value` for `ttl` seconds. Answers "".
"""
function lock_renew(etcd::EtcdServer, name::AbstractString; ttl::Integer, index=nothing,
                    value=nothing)
    i = index === nothing ? UInt64(0) : UInt64(parse_index(index))
    v = value === nothing ? C_NULL : String(value)
    v_len = value === nothing ? 0 : sizeof(value)
    err = handle_ref()
    check(etcdrs_client_lock_renew(client(etcd), name, sizeof(name), i, v, v_len, UInt64(ttl), err), err)
    return ""
end

"""
    lock_release(etcd, name; index=nothing, value=nothing)

Release the lock held under `index` or `value`. Answers "".
"""
function lock_release(etcd::EtcdServer, name::AbstractString; index=nothing, value=nothing)
    i = index === nothing ? UInt64(0) : UInt64(parse_index(index))
    v = value === nothing ? C_NULL : String(value)
    v_len = value === nothing ? 0 : sizeof(value)
    err = handle_ref()
    check(etcdrs_client_lock_release(client(etcd), name, sizeof(name), i, v, v_len, err), err)
    return ""
end

# A lock index given as a number or as the text the lock calls answer.
parse_index(i::Integer) = i
parse_index(i::AbstractString) = parse(UInt64, i)

# -- members in this process -------------------------------------------------------------

"""
    start_node(; name="default", data_dir="\$name.etcd", ready_timeout=60, flags...) -> EtcdNode

Start a member in this process and wait (at most `ready_timeout` seconds) until it
serves. `flags` are etcd's flags with underscores (`listen_peer_urls`,
`initial_cluster`, `initial_cluster_token`, `snapshot_count`, `election_timeout`, ...);
what is not given is the library's default (ephemeral ports on 127.0.0.1, one member).
"""
function start_node(; name::AbstractString="default", data_dir::AbstractString="$name.etcd",
                    ready_timeout::Real=60, flags...)
    config = handle_ref()
    err = handle_ref()
    check(etcdrs_config_new(name, sizeof(name), data_dir, sizeof(data_dir), config, err), err)
    node = handle_ref()
    try
        for (flag, value) in flags
            f = replace(String(flag), "_" => "-")
            v = flag_text(value)
            set_err = handle_ref()
            check(etcdrs_config_set(config[], f, sizeof(f), v, sizeof(v), set_err), set_err)
        end
        start_err = handle_ref()
        check(etcdrs_node_start(config[], node, start_err), start_err)
    finally
        etcdrs_config_free(config[])
    end
    ready_err = handle_ref()
    status = etcdrs_node_wait_ready(node[], UInt64(round(ready_timeout * 1000)), ready_err)
    if status != ETCDRS_OK
        etcdrs_node_free(node[])
        throw(take_error(ready_err[]))
    end
    urls = split(text(etcdrs_node_client_urls(node[])), ",")
    n = EtcdNode(node[], String(name), etcdrs_node_member_id(node[]), String.(urls))
    finalizer(free_node, n)
    return n
end

"""
    free_node(node)

The finalizer of an `EtcdNode`: stop the member if it runs, and free it.
"""
function free_node(node::EtcdNode)
    node.ptr == C_NULL && return nothing
    etcdrs_node_free(node.ptr)
    node.ptr = C_NULL
    return nothing
end

# etcd's command-line text for a flag's value: lists joined with commas, and a Dict
# (initial_cluster) as name=url pairs.
flag_text(v::AbstractString) = String(v)
flag_text(v::AbstractVector) = join(v, ",")
flag_text(v::AbstractDict) = join(["$k=$u" for (k, u) in v], ",")
flag_text(v) = string(v)

"""
    close(node::EtcdNode)

Stop the member if it runs and free it now (the finalizer does the same later).
"""
Base.close(node::EtcdNode) = free_node(node)

"""
    client_urls(node) -> Vector{String}

The URLs the member serves clients on.
"""
client_urls(node::EtcdNode) = node.client_urls

"""
    failure(node) -> Union{Nothing,EtcdError}

Why the member failed and serves no more, or `nothing` while it runs.
"""
function failure(node::EtcdNode)
    err = handle_ref()
    status = etcdrs_node_failure(node.ptr, err)
    status == ETCDRS_OK && return nothing
    return take_error(err[])
end

"""
    stop(node)

Stop the member; acknowledged writes are already on disk. A second stop does nothing.
"""
function stop(node::EtcdNode)
    node.ptr == C_NULL && return nothing
    err = handle_ref()
    check(etcdrs_node_stop(node.ptr, err), err)
    return nothing
end

"""
    version() -> String

libetcdrs's version.
"""
version() = unsafe_string(etcdrs_version())

end # module Etcdrs
