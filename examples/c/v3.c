/*
 * etcd's v3 API from C: a member inside this program; a put, a transaction, a lease and a
 * watch through its client (the same calls work over gRPC with etcdrs_client_new).
 *   gcc examples/c/v3.c $(pkg-config --cflags --libs etcdrs) -Wl,-rpath,"$HOME/.local/lib" -o v3
 *   ./v3 /tmp/v3.etcd
 */
#include <etcdrs.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, etcdrs_error *err) {
  etcdrs_str j = etcdrs_error_json(err);
  fprintf(stderr, "%s failed: %.*s\n", what, (int)j.len, j.data);
  etcdrs_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  const char *data_dir = argc > 1 ? argv[1] : "v3.etcd";
  etcdrs_error *err = NULL;
  etcdrs_config *cfg = NULL;
  etcdrs_node *node = NULL;
  etcdrs_client *client = NULL;
  etcdrs_v3_response *resp = NULL;

  if (etcdrs_config_new("v3", 2, data_dir, strlen(data_dir), &cfg, &err)) return fail("config", err);
  if (etcdrs_node_start(cfg, &node, &err)) return fail("start", err);
  etcdrs_config_free(cfg);
  if (etcdrs_node_client(node, &client, &err)) return fail("client", err);

  /* A watch on every key under /jobs/ (range end: the prefix with its last byte + 1). */
  etcdrs_v3_watch *watch = NULL;
  if (etcdrs_client_v3_watch(client, "/jobs/", 6, "/jobs0", 6, NULL, &watch, &err))
    return fail("watch", err);

  /* Put, then read back with the key's revisions. */
  if (etcdrs_client_v3_put(client, "/jobs/1", 7, "build", 5, NULL, &resp, &err)) return fail("put", err);
  etcdrs_v3_response_free(resp);
  if (etcdrs_client_v3_range(client, "/jobs/1", 7, NULL, 0, NULL, &resp, &err)) return fail("range", err);
  etcdrs_kv kv = etcdrs_v3_response_kv(resp, 0);
  printf("%.*s = %.*s (created at revision %lld, version %lld)\n", (int)kv.key.len,
         (const char *)kv.key.data, (int)kv.value.len, (const char *)kv.value.data,
         (long long)kv.create_revision, (long long)kv.version);
  etcdrs_v3_response_free(resp);

  /* A transaction: take the job if it is still "build". */
  etcdrs_txn *txn = etcdrs_txn_new();
  etcdrs_txn_compare(txn, "/jobs/1", 7, NULL, 0, ETCDRS_COMPARE_VALUE, ETCDRS_COMPARE_EQUAL, 0,
                     "build", 5, NULL);
  etcdrs_txn_put(txn, true, "/jobs/1", 7, "taken", 5, NULL, NULL);
  if (etcdrs_client_v3_txn(client, txn, &resp, &err)) return fail("txn", err);
  printf("txn succeeded: %s\n", etcdrs_v3_response_succeeded(resp) ? "yes" : "no");
  etcdrs_v3_response_free(resp);
  etcdrs_txn_free(txn);

  /* A lease of 30 s with a key attached. */
  if (etcdrs_client_v3_lease_grant(client, 30, 0, &resp, &err)) return fail("lease", err);
  etcdrs_put_options with_lease = {0};
  with_lease.lease = etcdrs_v3_response_lease_id(resp);
  printf("lease %lld granted for %lld s\n", (long long)with_lease.lease,
         (long long)etcdrs_v3_response_ttl(resp));
  etcdrs_v3_response_free(resp);
  if (etcdrs_client_v3_put(client, "/jobs/lock", 10, "me", 2, &with_lease, &resp, &err))
    return fail("put with lease", err);
  etcdrs_v3_response_free(resp);

  /* The watch saw all three changes, in order. */
  for (int seen = 0; seen < 3;) {
    if (etcdrs_v3_watch_next(watch, 5000, &resp, &err)) return fail("watch next", err);
    for (size_t i = 0; i < etcdrs_v3_response_event_count(resp); i++, seen++) {
      etcdrs_v3_event e = etcdrs_v3_response_event(resp, i);
      printf("event: %s %.*s = %.*s at revision %lld\n",
             e.event_type == ETCDRS_EVENT_PUT ? "PUT" : "DELETE", (int)e.kv.key.len,
             (const char *)e.kv.key.data, (int)e.kv.value.len, (const char *)e.kv.value.data,
             (long long)e.kv.mod_revision);
    }
    etcdrs_v3_response_free(resp);
  }
  etcdrs_v3_watch_free(watch);

  /* Every answer is also etcd's gateway JSON. */
  if (etcdrs_client_v3_range(client, "/jobs/", 6, "/jobs0", 6, NULL, &resp, &err))
    return fail("range", err);
  etcdrs_str json = etcdrs_v3_response_json(resp);
  printf("%.*s\n", (int)json.len, json.data);
  etcdrs_v3_response_free(resp);

  etcdrs_client_free(client);
  etcdrs_node_free(node);
  return 0;
}
