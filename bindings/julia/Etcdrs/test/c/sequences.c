/*
 * The C calls the Julia package makes, function by function, run for real (against a
 * member in this process and over HTTP) and under valgrind by the ffi tests
 * (julia_call_sequences_are_clean_under_valgrind). No Julia runtime exists on the
 * machines CI runs on; this shows that what Julia will do works and leaks nothing.
 *
 * seq_<name> mirrors the Julia function <name> (seq_<name>__<n> its n-th method), and the
 * helpers mirror the Julia helpers of the same names. bindings/julia/check compares the
 * calls each makes, in order, with the Julia source: a drift fails CI. Statements are in
 * evaluation order (no call nested in another's arguments), as the comparison reads them.
 */
#include "etcdrs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int checks = 0;

#define EXPECT(cond)                                                                  \
  do {                                                                                \
    checks++;                                                                         \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);             \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

/* The code of the last error taken (what Julia's EtcdError carries). */
static etcdrs_status last_code = 0;
static char last_message[256];

/* Julia's text(): a copy of borrowed text. */
static void copy_text(etcdrs_str s, char *buf, size_t cap) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  if (s.data != NULL) memcpy(buf, s.data, n);
  buf[s.data != NULL ? n : 0] = '\0';
}

/* take_error: read the error (code, message, cause, index), then free it. */
static void take_error(etcdrs_error *err) {
  char cause[256];
  last_code = etcdrs_error_code(err);
  copy_text(etcdrs_error_message(err), last_message, sizeof last_message);
  copy_text(etcdrs_error_cause(err), cause, sizeof cause);
  (void)etcdrs_error_index(err);
  etcdrs_error_free(err);
}

/* check: nothing on success; on failure the error is taken (Julia throws it). */
static int check(etcdrs_status status, etcdrs_error *err) {
  if (status == ETCDRS_OK) {
    last_code = 0;
    return 0;
  }
  take_error(err);
  return 1;
}

/* response_dict: the response's JSON (Julia parses it), then free the response. */
static char last_json[4096];
static void response_dict(etcdrs_response *r) {
  copy_text(etcdrs_response_json(r), last_json, sizeof last_json);
  etcdrs_response_free(r);
}

/* take_string: a string the library returned, then free it. */
static char last_string[4096];
static void take_string(char *s) {
  snprintf(last_string, sizeof last_string, "%s", s != NULL ? s : "");
  etcdrs_string_free(s);
}

#define S(lit) (lit), (sizeof(lit) - 1)

/* EtcdServer(host, port): a client over HTTP (no TLS material, no user: NULLs). */
static etcdrs_client *seq_EtcdServer__1(const char *endpoints) {
  etcdrs_client *c = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_new_auth(endpoints, strlen(endpoints), 0, NULL, 0, NULL, 0,
                                            NULL, 0, false, NULL, 0, NULL, 0, &c, &err);
  if (check(st, err)) return NULL;
  return c;
}

/* EtcdServer(node): a client of a member in this process. */
static etcdrs_client *seq_EtcdServer__2(const etcdrs_node *node) {
  etcdrs_client *c = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_node_client(node, &c, &err);
  if (check(st, err)) return NULL;
  return c;
}

static void seq_close__1(etcdrs_client *c) { etcdrs_client_free(c); }

/* The keys calls: call, check, response_dict. */
static etcdrs_status seq_set(const etcdrs_client *c, const char *key, const char *value, int64_t ttl) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_set(c, key, strlen(key), value, strlen(value), ttl, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_get(const etcdrs_client *c, const char *key, bool recursive) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_get(c, key, strlen(key), recursive, recursive, false, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_create(const etcdrs_client *c, const char *key, const char *value) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st =
      etcdrs_client_create(c, key, strlen(key), value, strlen(value), ETCDRS_NO_TTL, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_create_dir(const etcdrs_client *c, const char *key) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_create_dir(c, key, strlen(key), ETCDRS_NO_TTL, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_update(const etcdrs_client *c, const char *key, const char *value) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st =
      etcdrs_client_update(c, key, strlen(key), value, strlen(value), ETCDRS_NO_TTL, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_update_dir(const etcdrs_client *c, const char *key, int64_t ttl) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_update_dir(c, key, strlen(key), ttl, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_compare_and_swap(const etcdrs_client *c, const char *key, const char *value,
                                          const char *prev_value, uint64_t prev_index) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  size_t pv_len = prev_value != NULL ? strlen(prev_value) : 0;
  etcdrs_status st = etcdrs_client_compare_and_swap(c, key, strlen(key), value, strlen(value), prev_value,
                                                    pv_len, prev_index, ETCDRS_NO_TTL, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_compare_and_delete(const etcdrs_client *c, const char *key,
                                            const char *prev_value, uint64_t prev_index) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  size_t pv_len = prev_value != NULL ? strlen(prev_value) : 0;
  etcdrs_status st =
      etcdrs_client_compare_and_delete(c, key, strlen(key), prev_value, pv_len, prev_index, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_delete(const etcdrs_client *c, const char *key) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_delete(c, key, strlen(key), &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_delete_dir(const etcdrs_client *c, const char *key, bool recursive) {
  etcdrs_response *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_delete_dir(c, key, strlen(key), recursive, &out, &err);
  if (check(st, err)) return st;
  response_dict(out);
  return st;
}

static etcdrs_status seq_exists(const etcdrs_client *c, const char *key, bool *found) {
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_exists(c, key, strlen(key), found, &err);
  check(st, err);
  return st;
}

static etcdrs_status seq_machines(const etcdrs_client *c) {
  char *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_machines(c, &out, &err);
  if (check(st, err)) return st;
  take_string(out);
  return st;
}

static etcdrs_status seq_stats(const etcdrs_client *c, const char *kind) {
  char *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_stats(c, kind, strlen(kind), &out, &err);
  if (check(st, err)) return st;
  take_string(out);
  return st;
}

/* watch_loop: poll with a 1 ms timeout, pause on a timeout (Julia: sleep, other tasks
 * run), take each event, stop once `events` were seen; free the watch at the end. */
static int timeouts = 0;
static int watch_loop(const etcdrs_client *c, const char *key, uint64_t wait_index, bool recursive,
                      int events) {
  etcdrs_watch *w = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_watch_stream(c, key, strlen(key), wait_index, recursive, &w, &err);
  if (check(st, err)) return 0;
  int seen = 0;
  for (;;) {
    etcdrs_response *out = NULL;
    etcdrs_error *next_err = NULL;
    st = etcdrs_watch_next(w, 1, &out, &next_err);
    if (st == ETCDRS_CODE_TIMEOUT) {
      etcdrs_error_free(next_err);
      timeouts++;
      struct timespec pause = {0, 10 * 1000 * 1000};
      nanosleep(&pause, NULL);
      continue;
    }
    if (check(st, next_err)) break;
    response_dict(out);
    seen++;
    if (seen == events) break;
  }
  etcdrs_watch_free(w);
  return seen;
}

static int seq_watch(const etcdrs_client *c, const char *key, uint64_t wait_index) {
  return watch_loop(c, key, wait_index, false, 1);
}

static int seq_keep_watching(const etcdrs_client *c, const char *key, uint64_t wait_index, int events) {
  return watch_loop(c, key, wait_index, true, events);
}

static int seq_watch_until(const etcdrs_client *c, const char *key, uint64_t wait_index, int events) {
  return watch_loop(c, key, wait_index, true, events);
}

static etcdrs_status seq_set_leader(const etcdrs_client *c, const char *name, const char *leader,
                                    uint64_t *index) {
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_set_leader(c, name, strlen(name), leader, strlen(leader), 60, -1, index, &err);
  check(st, err);
  return st;
}

static etcdrs_status seq_get_leader(const etcdrs_client *c, const char *name) {
  char *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_get_leader(c, name, strlen(name), &out, &err);
  if (check(st, err)) return st;
  take_string(out);
  return st;
}

static etcdrs_status seq_delete_leader(const etcdrs_client *c, const char *name, const char *leader) {
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_delete_leader(c, name, strlen(name), leader, strlen(leader), &err);
  check(st, err);
  return st;
}

static etcdrs_status seq_lock_acquire(const etcdrs_client *c, const char *name, const char *value,
                                      uint64_t *index) {
  etcdrs_error *err = NULL;
  size_t v_len = value != NULL ? strlen(value) : 0;
  etcdrs_status st = etcdrs_client_lock_acquire(c, name, strlen(name), 60, value, v_len, -1, index, &err);
  check(st, err);
  return st;
}

static etcdrs_status seq_lock_retrieve(const etcdrs_client *c, const char *name, uint32_t field) {
  char *out = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_client_lock_retrieve(c, name, strlen(name), field, &out, &err);
  if (check(st, err)) return st;
  take_string(out);
  return st;
}

static etcdrs_status seq_lock_renew(const etcdrs_client *c, const char *name, uint64_t index, const char *value) {
  etcdrs_error *err = NULL;
  size_t v_len = value != NULL ? strlen(value) : 0;
  etcdrs_status st = etcdrs_client_lock_renew(c, name, strlen(name), index, value, v_len, 60, &err);
  check(st, err);
  return st;
}

static etcdrs_status seq_lock_release(const etcdrs_client *c, const char *name, uint64_t index,
                                      const char *value) {
  etcdrs_error *err = NULL;
  size_t v_len = value != NULL ? strlen(value) : 0;
  etcdrs_status st = etcdrs_client_lock_release(c, name, strlen(name), index, value, v_len, &err);
  check(st, err);
  return st;
}

/* start_node: config, flags, start (the config is freed either way), wait until ready
 * (freeing the node if it does not get there), then its URLs and id. */
static char node_urls[512];
static etcdrs_node *seq_start_node(const char *name, const char *data_dir, const char *flag, const char *value) {
  etcdrs_config *config = NULL;
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_config_new(name, strlen(name), data_dir, strlen(data_dir), &config, &err);
  if (check(st, err)) return NULL;
  etcdrs_node *node = NULL;
  if (flag != NULL) {
    etcdrs_error *set_err = NULL;
    st = etcdrs_config_set(config, flag, strlen(flag), value, strlen(value), &set_err);
    check(st, set_err);
  }
  if (st == ETCDRS_OK) {
    etcdrs_error *start_err = NULL;
    st = etcdrs_node_start(config, &node, &start_err);
    check(st, start_err);
  }
  etcdrs_config_free(config);
  if (st != ETCDRS_OK) return NULL;
  etcdrs_error *ready_err = NULL;
  st = etcdrs_node_wait_ready(node, 60000, &ready_err);
  if (st != ETCDRS_OK) {
    etcdrs_node_free(node);
    take_error(ready_err);
    return NULL;
  }
  copy_text(etcdrs_node_client_urls(node), node_urls, sizeof node_urls);
  EXPECT(etcdrs_node_member_id(node) != 0);
  return node;
}

static void seq_free_node(etcdrs_node *node) { etcdrs_node_free(node); }

static void seq_close__2(etcdrs_node *node) { seq_free_node(node); }

static etcdrs_status seq_failure(const etcdrs_node *node) {
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_node_failure(node, &err);
  if (st == ETCDRS_OK) return st;
  take_error(err);
  return st;
}

static etcdrs_status seq_stop(const etcdrs_node *node) {
  etcdrs_error *err = NULL;
  etcdrs_status st = etcdrs_node_stop(node, &err);
  check(st, err);
  return st;
}

static void seq_version(void) { EXPECT(strlen(etcdrs_version()) > 0); }

/* -- running them ------------------------------------------------------------------ */

struct later_write {
  const etcdrs_client *c;
  const char *key;
};

static void *write_later(void *p) {
  struct later_write *w = p;
  struct timespec pause = {0, 50 * 1000 * 1000};
  nanosleep(&pause, NULL);
  etcdrs_response *out = NULL;
  if (etcdrs_client_set(w->c, w->key, strlen(w->key), S("later"), ETCDRS_NO_TTL, &out, NULL) == ETCDRS_OK)
    etcdrs_response_free(out);
  return NULL;
}

static uint64_t index_in(const char *json, const char *field) {
  const char *at = strstr(json, field);
  return at != NULL ? strtoull(at + strlen(field) + 1, NULL, 10) : 0;
}

static void exercise(const etcdrs_client *c, const char *p) {
  char k[128], d[128], q[128];
  snprintf(k, sizeof k, "%s/k", p);
  snprintf(d, sizeof d, "%s/dir", p);
  snprintf(q, sizeof q, "%s/dir/x", p);

  EXPECT(seq_set(c, k, "v1", ETCDRS_NO_TTL) == ETCDRS_OK);
  uint64_t first = index_in(last_json, "\"modifiedIndex\"");
  EXPECT(first > 0);
  EXPECT(seq_get(c, k, false) == ETCDRS_OK && strstr(last_json, "\"v1\"") != NULL);
  EXPECT(seq_get(c, "/nothing/here", false) == ETCDRS_CODE_KEY_NOT_FOUND && last_code == 100);
  EXPECT(strcmp(last_message, "Key not found") == 0);
  EXPECT(seq_create(c, k, "again") == ETCDRS_CODE_NODE_EXIST);
  EXPECT(seq_update(c, k, "v2") == ETCDRS_OK && strstr(last_json, "\"update\"") != NULL);
  EXPECT(seq_update(c, "/nothing/here", "x") == ETCDRS_CODE_KEY_NOT_FOUND);
  EXPECT(seq_create_dir(c, d) == ETCDRS_OK);
  EXPECT(seq_create_dir(c, d) == ETCDRS_CODE_NODE_EXIST);
  EXPECT(seq_update_dir(c, d, 600) == ETCDRS_OK);
  EXPECT(seq_update_dir(c, "/nothing/here", 600) == ETCDRS_CODE_KEY_NOT_FOUND);
  EXPECT(seq_create(c, q, "x") == ETCDRS_OK);
  EXPECT(seq_get(c, p, true) == ETCDRS_OK && strstr(last_json, "\"nodes\"") != NULL);
  EXPECT(seq_compare_and_swap(c, k, "v3", "v2", 0) == ETCDRS_OK);
  EXPECT(seq_compare_and_swap(c, k, "v4", "v2", 0) == ETCDRS_CODE_TEST_FAILED);
  EXPECT(seq_compare_and_delete(c, k, "nope", 0) == ETCDRS_CODE_TEST_FAILED);
  EXPECT(seq_compare_and_delete(c, k, "v3", 0) == ETCDRS_OK);
  EXPECT(seq_delete(c, k) == ETCDRS_CODE_KEY_NOT_FOUND);
  EXPECT(seq_delete(c, q) == ETCDRS_OK);
  EXPECT(seq_delete_dir(c, "/nothing/here", false) == ETCDRS_CODE_KEY_NOT_FOUND);
  EXPECT(seq_delete_dir(c, d, false) == ETCDRS_OK);
  bool found = true;
  EXPECT(seq_exists(c, d, &found) == ETCDRS_OK && !found);
  EXPECT(seq_machines(c) == ETCDRS_OK && strstr(last_string, "http://127.0.0.1:") != NULL);
  EXPECT(seq_stats(c, "store") == ETCDRS_OK && strstr(last_string, "getsSuccess") != NULL);
  EXPECT(seq_stats(c, "nonsense") != ETCDRS_OK && last_code != 0);

  /* Watches: from history (no wait), and one that times out first (a write comes later). */
  EXPECT(seq_watch(c, k, first) == 1 && strstr(last_json, "\"v1\"") != NULL);
  EXPECT(seq_keep_watching(c, p, first, 3) == 3);
  EXPECT(seq_watch_until(c, k, first, 2) == 2);
  char w[128];
  snprintf(w, sizeof w, "%s/later", p);
  struct later_write lw = {c, w};
  pthread_t t;
  pthread_create(&t, NULL, write_later, &lw);
  int before = timeouts;
  EXPECT(seq_watch(c, w, 0) == 1 && strstr(last_json, "\"later\"") != NULL);
  pthread_join(t, NULL);
  EXPECT(timeouts > before);
  /* An index out of the history: the watch's error is taken. */
  EXPECT(seq_watch(c, k, 1) == 0 || last_code == ETCDRS_CODE_EVENT_INDEX_CLEARED || last_code == 0);

  /* The leader and lock modules. */
  char name[128];
  snprintf(name, sizeof name, "%s-lock", p + 1);
  uint64_t index = 0;
  EXPECT(seq_lock_acquire(c, name, "me", &index) == ETCDRS_OK && index > 0);
  EXPECT(seq_lock_retrieve(c, name, ETCDRS_LOCK_FIELD_INDEX) == ETCDRS_OK &&
         strtoull(last_string, NULL, 10) == index);
  EXPECT(seq_lock_renew(c, name, index, NULL) == ETCDRS_OK);
  EXPECT(seq_lock_release(c, name, 0, "someone else") != ETCDRS_OK && last_code != 0);
  EXPECT(seq_lock_release(c, name, index, NULL) == ETCDRS_OK);
  snprintf(name, sizeof name, "%s-svc", p + 1);
  EXPECT(seq_set_leader(c, name, "n1", &index) == ETCDRS_OK && index > 0);
  EXPECT(seq_get_leader(c, name) == ETCDRS_OK && strcmp(last_string, "n1") == 0);
  EXPECT(seq_delete_leader(c, name, "n1") == ETCDRS_OK);
  EXPECT(seq_lock_retrieve(c, name, 7) != ETCDRS_OK && last_code != 0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  char dir[1024];
  seq_version();
  /* A bad flag: the config is freed, nothing starts. */
  snprintf(dir, sizeof dir, "%s/bad", argv[1]);
  EXPECT(seq_start_node("bad", dir, "snapshot-count", "many") == NULL && last_code == ETCDRS_CODE_INVALID_CONFIG);
  snprintf(dir, sizeof dir, "%s/jl", argv[1]);
  etcdrs_node *node = seq_start_node("jl", dir, "heartbeat-interval", "50");
  EXPECT(node != NULL);
  EXPECT(seq_failure(node) == ETCDRS_OK);

  etcdrs_client *local = seq_EtcdServer__2(node);
  EXPECT(local != NULL);
  exercise(local, "/local");
  char first_url[sizeof node_urls];
  snprintf(first_url, sizeof first_url, "%s", node_urls);
  char *comma = strchr(first_url, ',');
  if (comma != NULL) *comma = '\0';
  etcdrs_client *http = seq_EtcdServer__1(first_url);
  EXPECT(http != NULL);
  exercise(http, "/http");
  /* A client of nothing: the connection error is taken. */
  etcdrs_client *dead = seq_EtcdServer__1("http://127.0.0.1:1");
  bool found = false;
  EXPECT(seq_exists(dead, "/k", &found) == ETCDRS_CODE_CONNECTION_FAILED);
  EXPECT(seq_machines(dead) == ETCDRS_CODE_CONNECTION_FAILED);
  seq_close__1(dead);

  EXPECT(seq_stop(node) == ETCDRS_OK);
  EXPECT(seq_stop(node) == ETCDRS_OK);
  EXPECT(seq_get(local, "/local", false) == ETCDRS_CODE_STOPPED);
  seq_close__1(local);
  seq_close__1(http);
  seq_close__2(node);
  printf("ok: %d checks\n", checks);
  return 0;
}
