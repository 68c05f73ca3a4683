# The whole Etcd.jl API against a member in this Julia process and against a member
# started as a process (the etcdrs binary: ENV["ETCDRS_BIN"], else this repository's
# debug build). Run with `julia --project=bindings/julia/Etcdrs -e 'using Pkg; Pkg.test()'`.
using Test
using Sockets
using Etcdrs

const REPO = normpath(joinpath(@__DIR__, "..", "..", "..", ".."))

function etcdrs_bin()
    bin = get(ENV, "ETCDRS_BIN", "")
    isempty(bin) || return bin
    target = readchomp(`$(joinpath(REPO, "scripts", "target-dir.sh"))`)
    return joinpath(target, "debug", "etcdrs")
end

# An etcdrs member in its own process on ephemeral ports: (process, "host", port).
function member_process(dir)
    err = Pipe()
    proc = run(pipeline(`$(etcdrs_bin()) --data-dir $dir --listen-client-urls http://127.0.0.1:0
                         --listen-peer-urls http://127.0.0.1:0`; stderr=err); wait=false)
    close(err.in)
    deadline = time() + 20
    while time() < deadline
        line = readline(err)
        m = match(r"member started.*?\"http://([0-9.]+):(\d+)\"", line)
        m === nothing || return proc, String(m.captures[1]), parse(Int, m.captures[2])
    end
    kill(proc)
    error("the etcdrs member did not start")
end

# Wait (bounded) until `f()` is true.
function eventually(f; timeout=10)
    deadline = time() + timeout
    while time() < deadline
        f() && return true
        sleep(0.02)
    end
    return false
end

function exercise(etcd::EtcdServer, p::String)
    r = Etcdrs.set(etcd, "$p/foo/bar", "Hello World")
    @test r["action"] == "set"
    @test r["node"]["key"] == "$p/foo/bar" && r["node"]["value"] == "Hello World"
    r = Etcdrs.set(etcd, "$p/foo/bar", "Hello World"; ttl=60)
    @test r["node"]["ttl"] == 60 && haskey(r["node"], "expiration")
    r = Etcdrs.compare_and_swap(etcd, "$p/foo/bar", "Goodbye Cruel World"; prev_value="Hello World")
    @test r["action"] == "compareAndSwap" && r["prevNode"]["value"] == "Hello World"
    idx = r["node"]["modifiedIndex"]
    r = Etcdrs.test_and_set(etcd, "$p/foo/bar", "Hello World"; prev_index=idx)
    @test r["node"]["value"] == "Hello World"
    e = try
        Etcdrs.compare_and_swap(etcd, "$p/foo/bar", "x"; prev_value="nope")
    catch err
        err
    end
    @test e isa EtcdError && e.errorCode == 101 && e.message == "Compare failed"
    @test Etcdrs.create(etcd, "$p/foo/boo", "Hello World")["action"] == "create"
    @test_throws EtcdError Etcdrs.create(etcd, "$p/foo/boo", "again")
    @test Etcdrs.create_dir(etcd, "$p/fooDir")["node"]["dir"]
    r = Etcdrs.update(etcd, "$p/foo/boo", "Merhaba")
    @test r["action"] == "update" && r["prevNode"]["value"] == "Hello World"
    @test Etcdrs.update_dir(etcd, "$p/fooDir"; ttl=100)["node"]["ttl"] == 100
    @test Etcdrs.get(etcd, "$p/foo/bar")["node"]["value"] == "Hello World"
    r = Etcdrs.get(etcd, "$p/foo"; recursive=true, sorted=true)
    @test [n["key"] for n in r["node"]["nodes"]] == ["$p/foo/bar", "$p/foo/boo"]
    @test Etcdrs.exists(etcd, "$p/foo/bar")
    @test !Etcdrs.exists(etcd, "$p/foo/none")
    @test Etcdrs.delete(etcd, "$p/foo/boo")["action"] == "delete"
    Etcdrs.create_dir(etcd, "$p/foo/qux")
    @test Etcdrs.delete_dir(etcd, "$p/foo/qux")["prevNode"]["dir"]
    @test Etcdrs.delete_dir(etcd, "$p/foo"; recursive=true)["action"] == "delete"
    e = try
        Etcdrs.get(etcd, "$p/foo"; recursive=true)
    catch err
        err
    end
    @test e isa EtcdError && e.errorCode == 100 && e.cause == "$p/foo" && e.index > 0
    Etcdrs.create(etcd, "$p/foo/bar", "bar value")
    r = Etcdrs.compare_and_delete(etcd, "$p/foo/bar"; prev_value="bar value")
    @test r["action"] == "compareAndDelete"
    r = Etcdrs.create(etcd, "$p/foo/bar", "Hello World")
    r = Etcdrs.compare_and_delete(etcd, "$p/foo/bar"; prev_index=r["node"]["modifiedIndex"])
    @test r["prevNode"]["value"] == "Hello World"

    # Watches are Tasks; the scheduler goes on while they wait.
    seen = Dict{String,Any}[]
    t = Etcdrs.watch(etcd, "$p/foo/bar", ev -> push!(seen, ev))
    sleep(0.1)
    Etcdrs.set(etcd, "$p/foo/bar", "Who's watching the watchers")
    @test eventually(() -> istaskdone(t))
    @test seen[1]["node"]["value"] == "Who's watching the watchers"
    every = Dict{String,Any}[]
    t = Etcdrs.keep_watching(etcd, "$p/kw", ev -> push!(every, ev); recursive=true)
    for i in 1:3
        Etcdrs.set(etcd, "$p/kw/$i", "v$i")
    end
    @test eventually(() -> length(every) == 3)
    @test [ev["node"]["value"] for ev in every] == ["v1", "v2", "v3"]
    @test !istaskdone(t)
    count = Ref(0)
    t = Etcdrs.watch_until(etcd, "$p/wu", ev -> (count[] += 1), ev -> count[] > 2; recursive=true)
    for i in 1:4
        Etcdrs.set(etcd, "$p/wu/$i", "x")
    end
    @test eventually(() -> istaskdone(t))
    @test count[] == 3

    @test startswith(Etcdrs.machines(etcd), "http://")
    @test haskey(Etcdrs.stats(etcd, "store"), "getsSuccess")
    @test Etcdrs.stats(etcd, "self")["state"] == "StateLeader"

    # The leader and lock modules.
    @test parse(Int, Etcdrs.set_leader(etcd, "my-cluster$(length(p))"; name="leader-1", ttl=60)) > 0
    @test Etcdrs.get_leader(etcd, "my-cluster$(length(p))") == "leader-1"
    @test Etcdrs.delete_leader(etcd, "my-cluster$(length(p))"; name="leader-1") == ""
    lock = "mylock$(length(p))"
    index = Etcdrs.lock_acquire(etcd, lock; ttl=100)
    @test Etcdrs.lock_retrieve(etcd, lock) == index
    @test Etcdrs.lock_renew(etcd, lock; index=index, ttl=60) == ""
    # A second acquire waits (on a libuv thread) while this task goes on.
    second = @async Etcdrs.lock_acquire(etcd, lock; ttl=100, value="second")
    sleep(0.2)
    @test !istaskdone(second)
    @test Etcdrs.lock_release(etcd, lock; index=index) == ""
    @test eventually(() -> istaskdone(second))
    @test parse(Int, fetch(second)) > parse(Int, index)
    @test Etcdrs.lock_retrieve(etcd, lock; field="value") == "second"
    Etcdrs.lock_release(etcd, lock; value="second")
end

@testset "Etcdrs" begin
    @test !isempty(Etcdrs.version())
    @test string(EtcdServer()) == "EtcdServer(\"127.0.0.1\",4001,\"v2\")"
    @test string(EtcdServer("172.17.42.1", 5001)) == "EtcdServer(\"172.17.42.1\",5001,\"v2\")"

    @testset "a member in this process" begin
        dir = mktempdir()
        node = start_node(; name="jl", data_dir=joinpath(dir, "jl"))
        @test Etcdrs.failure(node) === nothing
        @test startswith(client_urls(node)[1], "http://127.0.0.1:")
        local_client = EtcdServer(node)
        exercise(local_client, "/local")
        url = split(client_urls(node)[1], "://")[2]
        host, port = split(url, ":")
        http = EtcdServer(host, parse(Int, port))
        exercise(http, "/http")
        close(http)
        @test_throws EtcdError start_node(; name="bad", data_dir=joinpath(dir, "bad"), snapshot_count="many")
        stop(node)
        stop(node)
        e = try
            Etcdrs.get(local_client, "/local")
        catch err
            err
        end
        @test e isa EtcdError && e.errorCode == 1010
        close(local_client)
        close(node)
        close(node)
    end

    @testset "three members in this process" begin
        dir = mktempdir()
        ports = map(1:3) do _
            port, server = listenany(ip"127.0.0.1", 20000)
            close(server)
            Int(port)
        end
        cluster = Dict("n$i" => "http://127.0.0.1:$(ports[i+1])" for i in 0:2)
        nodes = [@async start_node(; name=n, data_dir=joinpath(dir, n), listen_peer_urls=u,
                                   initial_advertise_peer_urls=u, initial_cluster=cluster,
                                   initial_cluster_token="jl-cluster") for (n, u) in cluster]
        nodes = fetch.(nodes)
        clients = EtcdServer.(nodes)
        Etcdrs.set(clients[1], "/shared", "from one")
        for c in clients
            @test Etcdrs.get(c, "/shared"; quorum=true)["node"]["value"] == "from one"
        end
        foreach(close, clients)
        foreach(stop, nodes)
    end

    @testset "a member process" begin
        proc, host, port = member_process(mktempdir())
        try
            exercise(EtcdServer(host, port), "/process")
        finally
            kill(proc)
        end
    end

    @testset "no member" begin
        e = try
            Etcdrs.get(EtcdServer("127.0.0.1", 1), "/k")
        catch err
            err
        end
        @test e isa EtcdError && e.errorCode == 1002
    end
end
