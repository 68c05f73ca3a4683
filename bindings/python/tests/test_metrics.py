"""/metrics of a 3-member cluster, read with the Prometheus client library's own text
parser (prometheus_client.parser): etcd's metric names, types, labels and values that
follow what the cluster did."""

import json
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import etcdrs
from conftest import free_ports


def scrape(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return families


def value(families, family, sample=None, **labels):
    f = families[family]
    for s in f.samples:
        if s.name == (sample or family) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError("no sample %s %s in %s" % (sample or family, labels, f.samples))


def test_a_cluster_reports_etcds_metrics(tmp_path):
    peers = free_ports(4)
    initial = {"m%d" % i: "http://127.0.0.1:%d" % p for i, p in enumerate(peers[:3])}
    metrics_url = "http://127.0.0.1:%d" % peers[3]
    nodes = []
    try:
        for name, url in initial.items():
            extra = {"listen_metrics_urls": metrics_url} if name == "m0" else {}
            nodes.append(etcdrs.Node(name=name, data_dir=str(tmp_path / name),
                                     listen_peer_urls=url, initial_advertise_peer_urls=url,
                                     initial_cluster=initial, initial_cluster_token="metrics",
                                     **extra))
        for n in nodes:
            assert n.wait_ready(30), n.name
        c = nodes[1].client()
        for i in range(5):
            c.write("/k%d" % i, "v")
        c.write("/k0", "w", prevValue="v")
        put = urllib.request.Request(
            nodes[2].client_urls[0] + "/v3/kv/put",
            data=json.dumps({"key": "YQ==", "value": "Yg=="}).encode(), method="POST")
        urllib.request.urlopen(put, timeout=10).read()
        # Every member has applied everything before it is scraped.
        for n in nodes:
            n.client().read("/k4", quorum=True)

        ids = {n.name: "%x" % n.member_id for n in nodes}
        leader = nodes[0].client().leader["id"]
        leaders = 0
        for n in nodes:
            f = scrape(n.client_urls[0])
            others = [ids[m.name] for m in nodes if m is not n]
            assert f["etcd_server_has_leader"].type == "gauge"
            assert value(f, "etcd_server_has_leader") == 1
            leaders += value(f, "etcd_server_is_leader")
            assert f["etcd_server_leader_changes_seen"].type == "counter"
            assert value(f, "etcd_server_leader_changes_seen",
                         "etcd_server_leader_changes_seen_total") >= 1
            committed = value(f, "etcd_server_proposals_committed_total")
            assert value(f, "etcd_server_proposals_applied_total") <= committed
            assert committed >= 7
            assert value(f, "etcd_server_proposals_pending") == 0
            assert value(f, "etcd_server_id", server_id=ids[n.name]) == 1
            # The v2 writes went through raft: every member applied them.
            assert value(f, "etcd_debugging_store_writes", "etcd_debugging_store_writes_total",
                         action="set") >= 5
            assert value(f, "etcd_debugging_store_writes", "etcd_debugging_store_writes_total",
                         action="compareAndSwap") == 1
            assert value(f, "etcd_debugging_mvcc_current_revision") == 2
            assert value(f, "etcd_debugging_mvcc_keys_total") == 1
            assert value(f, "etcd_mvcc_db_total_size_in_bytes") > 0
            fsync = f["etcd_disk_wal_fsync_duration_seconds"]
            assert fsync.type == "histogram"
            count = value(f, "etcd_disk_wal_fsync_duration_seconds",
                          "etcd_disk_wal_fsync_duration_seconds_count")
            assert count >= 1
            buckets = [s.value for s in fsync.samples if s.name.endswith("_bucket")]
            assert buckets == sorted(buckets) and buckets[-1] == count
            assert value(f, "etcd_disk_backend_commit_duration_seconds",
                         "etcd_disk_backend_commit_duration_seconds_count") >= 1
            # Followers talk to the leader only; the leader to every follower.
            if value(f, "etcd_server_is_leader") == 0:
                others = [leader]
            for peer in others:
                assert value(f, "etcd_network_peer_sent_bytes",
                             "etcd_network_peer_sent_bytes_total", To=peer) > 0
                assert value(f, "etcd_network_peer_received_bytes",
                             "etcd_network_peer_received_bytes_total", From=peer) > 0
            if value(f, "etcd_server_is_leader") == 1:
                for peer in others:
                    assert value(f, "etcd_network_peer_round_trip_time_seconds",
                                 "etcd_network_peer_round_trip_time_seconds_count",
                                 To=peer) >= 1
            assert value(f, "process_resident_memory_bytes") > 0
            assert value(f, "process_open_fds") > 0
        assert leaders == 1

        # --listen-metrics-urls answers /metrics and /health, and nothing else.
        assert value(scrape(metrics_url), "etcd_server_id", server_id=ids["m0"]) == 1
        with urllib.request.urlopen(metrics_url + "/health", timeout=10) as r:
            assert json.loads(r.read()) == {"health": "true"}
        try:
            urllib.request.urlopen(metrics_url + "/v2/keys/k1", timeout=10)
            raise AssertionError("the metrics URL served the keys API")
        except urllib.error.HTTPError as e:
            assert e.code == 404
    finally:
        for n in nodes:
            n.stop()
