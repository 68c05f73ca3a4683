/*
 * A member inside this program, and a client writing to it and reading back.
 *   scripts/install-libetcdrs.sh "$HOME/.local"
 *   export PKG_CONFIG_PATH="$HOME/.local/lib/pkgconfig"
 *   gcc examples/c/hello.c $(pkg-config --cflags --libs etcdrs) -Wl,-rpath,"$HOME/.local/lib" -o hello
 *   ./hello /tmp/hello.etcd
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
  const char *data_dir = argc > 1 ? argv[1] : "hello.etcd";
  etcdrs_error *err = NULL;
  etcdrs_config *cfg = NULL;
  etcdrs_node *node = NULL;
  etcdrs_client *client = NULL;
  etcdrs_response *resp = NULL;

  /* A single member on ephemeral ports of 127.0.0.1, data in data_dir. */
  if (etcdrs_config_new("hello", 5, data_dir, strlen(data_dir), &cfg, &err)) return fail("config", err);
  if (etcdrs_node_start(cfg, &node, &err)) return fail("start", err);
  etcdrs_config_free(cfg);
  etcdrs_str urls = etcdrs_node_client_urls(node);
  printf("member serving on %.*s\n", (int)urls.len, urls.data);

  if (etcdrs_node_client(node, &client, &err)) return fail("client", err);
  if (etcdrs_client_set(client, "/message", 8, "Hello world", 11, ETCDRS_NO_TTL, &resp, &err))
    return fail("set", err);
  etcdrs_response_free(resp);
  if (etcdrs_client_get(client, "/message", 8, false, false, true, &resp, &err))
    return fail("get", err);
  etcdrs_str value = etcdrs_key_node_value(etcdrs_response_node(resp));
  printf("/message = %.*s (index %llu)\n", (int)value.len, value.data,
         (unsigned long long)etcdrs_response_etcd_index(resp));
  etcdrs_str json = etcdrs_response_json(resp);
  printf("%.*s\n", (int)json.len, json.data);
  etcdrs_response_free(resp);

  etcdrs_client_free(client);
  etcdrs_node_free(node); /* stops the member */
  return 0;
}
