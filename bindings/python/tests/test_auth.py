"""python-etcd3's ``user`` and ``password`` against a server with auth enabled: etcdrs.v3
and python-etcd3 itself, each against an etcdrs member and against real etcd 3.4, so the
expectations are etcd's. Users and roles are made with etcdctl, as an operator would."""

import subprocess

import pytest

import etcdrs.v3


def _etcdctl(host, port, *args):
    out = subprocess.run(
        ["etcdctl", "--endpoints", "%s:%d" % (host, port), "--command-timeout=10s"] + list(args),
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def auth_server(v3_server):
    """A v3 server with root, alice (role reader: read on /pub/), /pub/x and auth on."""
    host, port = v3_server
    for args in (["user", "add", "root", "--new-user-password=rootpw"],
                 ["user", "add", "alice", "--new-user-password=alicepw"],
                 ["role", "add", "reader"],
                 ["role", "grant-permission", "reader", "read", "/pub/", "--prefix=true"],
                 ["user", "grant-role", "alice", "reader"],
                 ["put", "/pub/x", "hello"],
                 ["auth", "enable"]):
        _etcdctl(host, port, *args)
    return host, port


def _module(name):
    if name == "etcd3":
        import etcd3  # python-etcd3, installed by scripts/test-python.sh
        return etcd3
    return etcdrs.v3


def _code(e):
    """The gRPC status code of a failed call: etcdrs.v3's exceptions carry it; python-etcd3
    passes grpc's own error on for codes it has no class for."""
    code = e.code
    if callable(code):
        return code().value[0]
    return code


# python-etcd3 0.12.0 sends its token as grpc call credentials, which current grpcio sends
# only over TLS ("Established channel does not have a sufficient security level"), against
# etcd as against etcdrs: its calls as a user are left to etcdrs.v3 here.
def test_users_read_and_write_what_their_roles_allow(auth_server):
    host, port = auth_server
    m = etcdrs.v3
    root = m.client(host=host, port=port, user="root", password="rootpw", timeout=10)
    root.put("/secret", "s3")
    assert root.get("/secret")[0] == b"s3"
    alice = m.client(host=host, port=port, user="alice", password="alicepw", timeout=10)
    assert alice.get("/pub/x")[0] == b"hello"
    with pytest.raises(Exception) as denied:
        alice.get("/secret")
    assert _code(denied.value) == 7  # PERMISSION_DENIED
    with pytest.raises(Exception) as denied:
        alice.put("/pub/x", "no")
    assert _code(denied.value) == 7
    nobody = m.client(host=host, port=port, timeout=10)
    with pytest.raises(Exception) as empty:
        nobody.get("/pub/x")
    assert _code(empty.value) == 3  # INVALID_ARGUMENT: "etcdserver: user name is empty"
    assert "user name is empty" in str(empty.value)


@pytest.mark.parametrize("module", ["etcdrs.v3", "etcd3"])
def test_a_wrong_password_is_refused_when_the_client_is_made(auth_server, module):
    host, port = auth_server
    m = _module(module)
    with pytest.raises(Exception) as failed:
        m.client(host=host, port=port, user="root", password="wrong", timeout=10)
    assert _code(failed.value) == 3
    assert "authentication failed" in str(failed.value)


def test_a_user_needs_its_password():
    with pytest.raises(Exception, match="both user and password"):
        etcdrs.v3.client(user="root")
    with pytest.raises(ValueError, match="ca_cert is required"):
        etcdrs.v3.client(cert_cert="c.pem")


# ---------------------------------------------------------------- v2 auth

def _v2(url, method, path, body=None, user=None):
    import base64
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else body.encode())
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture(params=["etcdrs", "etcd"])
def v2_auth_server(request, tmp_path):
    """A v2 server with root, ann (role app: read and write /app/*), v2 auth on and the
    guest role gone (a client without credentials may do nothing)."""
    from conftest import EtcdProcess, MemberProcess
    if request.param == "etcdrs":
        m = MemberProcess(str(tmp_path / "member"))
    else:
        m = EtcdProcess(str(tmp_path / "etcd"), extra=["--enable-v2=true"])
    try:
        url, root = m.url, "root:rootpw"
        for method, path, body, user in (
                ("PUT", "/v2/auth/users/root", '{"user":"root","password":"rootpw"}', None),
                ("PUT", "/v2/auth/enable", None, root),
                ("PUT", "/v2/auth/roles/app",
                 '{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":["/app/*"]}}}',
                 root),
                ("PUT", "/v2/auth/users/ann", '{"user":"ann","password":"annpw","roles":["app"]}',
                 root),
                ("DELETE", "/v2/auth/roles/guest", None, root)):
            assert _v2(url, method, path, body, user) in (200, 201), (method, path)
        host, port = url[len("http://"):].split(":")
        yield host, int(port)
    finally:
        m.stop()


@pytest.mark.parametrize("module", ["etcdrs", "etcd"])
def test_python_etcd_username_and_password(v2_auth_server, module):
    """python-etcd's Client(username=, password=), and etcdrs.Client with the same."""
    host, port = v2_auth_server
    if module == "etcd":
        import etcd as m  # python-etcd, installed by scripts/test-python.sh
    else:
        m = etcdrs
    ann = m.Client(host=host, port=port, username="ann", password="annpw")
    ann.write("/app/x", "1")
    assert ann.read("/app/x").value == "1"
    with pytest.raises(Exception, match="Insufficient credentials|requires user authentication"):
        ann.write("/other", "1")
    nobody = m.Client(host=host, port=port)
    with pytest.raises(Exception, match="Insufficient credentials|requires user authentication"):
        nobody.read("/app/x")
    wrong = m.Client(host=host, port=port, username="ann", password="nope")
    with pytest.raises(Exception, match="Insufficient credentials|requires user authentication"):
        wrong.read("/app/x")
