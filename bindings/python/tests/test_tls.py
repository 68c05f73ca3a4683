"""python-etcd's TLS arguments (protocol="https", ca_cert, cert) against a member that
serves https and requires client certificates. The CA and certificates are made here with
cryptography (installed with pyopenssl); no key is kept."""

import datetime
import ipaddress
import os
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import etcdrs
from conftest import etcdrs_bin, free_ports


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject_cn, issuer_cn, issuer_key, key, ca=False, usages=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject_cn)).issuer_name(_name(issuer_cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, cert, key):
    with open(path + ".pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(path + "-key.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return path + ".pem", path + "-key.pem"


@pytest.fixture
def tls_member(tmp_path):
    d = str(tmp_path)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("test CA", "test CA", ca_key, ca_key, ca=True)
    ca_file, _ = _write(os.path.join(d, "ca"), ca, ca_key)
    certs = {}
    for name, usages in (("member", (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)),
                         ("client", (ExtendedKeyUsageOID.CLIENT_AUTH,))):
        key = ec.generate_private_key(ec.SECP256R1())
        certs[name] = _write(os.path.join(d, name), _issue(name, "test CA", ca_key, key, usages=usages), key)
    client_port, peer_port = free_ports(2)
    url = "https://127.0.0.1:%d" % client_port
    proc = subprocess.Popen(
        [etcdrs_bin(), "--data-dir", os.path.join(d, "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", "http://127.0.0.1:%d" % peer_port,
         "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer_port,
         "--initial-cluster", "default=http://127.0.0.1:%d" % peer_port,
         "--cert-file", certs["member"][0], "--key-file", certs["member"][1],
         "--trusted-ca-file", ca_file, "--client-cert-auth"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = threading.Event()

    def read():
        for line in proc.stderr:
            if "member started" in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    assert started.wait(20), "the member did not start"
    try:
        yield client_port, ca_file, certs["client"]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_pythons_tls_arguments_reach_a_member_that_requires_client_certificates(tls_member):
    port, ca_file, (cert, key) = tls_member
    c = etcdrs.Client(host="127.0.0.1", port=port, protocol="https", ca_cert=ca_file,
                      cert=(cert, key))
    deadline = time.time() + 20
    while True:
        try:
            c.write("/secure", "yes")
            break
        except etcdrs.EtcdException:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    assert c.read("/secure").value == "yes"
    # One file holding both the certificate and the key works too, as in python-etcd.
    both = cert + ".both"
    with open(both, "w") as f:
        f.write(open(cert).read() + open(key).read())
    assert etcdrs.Client(host="127.0.0.1", port=port, protocol="https", ca_cert=ca_file,
                         cert=both).read("/secure").value == "yes"
    # Without a client certificate the member refuses; without a CA, https is refused here.
    anonymous = etcdrs.Client(host="127.0.0.1", port=port, protocol="https", ca_cert=ca_file,
                              read_timeout=5)
    with pytest.raises(etcdrs.EtcdException):
        anonymous.read("/secure")
    with pytest.raises(etcdrs.EtcdException, match="https needs a CA"):
        etcdrs.Client(host="127.0.0.1", port=port, protocol="https")
