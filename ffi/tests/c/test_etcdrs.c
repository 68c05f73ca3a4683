/*
 * The C ABI from C: a member in this process, every client operation in-process and over
 * HTTP, a continuous watch polled from one thread while another writes and a third
 * cancels, the v3 calls (KV, txn, leases, watches) in-process and over gRPC, a 3-member
 * cluster in this process, and every error path.
 *
 * Usage: test_etcdrs <scratch dir> <free port> <free port> <free port>
 * (ffi/tests/c_abi.rs builds it against libetcdrs.so and libetcdrs.a and runs it, also
 * under valgrind.) Exits 0 when every check holds; prints the first failure otherwise.
 */
#include "etcdrs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A string literal as pointer + length. */
#define S(lit) (lit), (sizeof(lit) - 1)

static int checks = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    checks++;                                                                        \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

static void ok_at(etcdrs_status st, etcdrs_error *err, const char *call, int line) {
  checks++;
  if (st != ETCDRS_OK) {
    etcdrs_str j = etcdrs_error_json(err);
    fprintf(stderr, "line %d: %s failed with %u: %.*s\n", line, call, st, (int)j.len,
            j.data ? j.data : "");
    exit(1);
  }
  if (err != NULL) {
    fprintf(stderr, "line %d: %s succeeded but wrote an error\n", line, call);
    exit(1);
  }
}

/* Run `call` (which passes &err as its error_out) and require success. */
#define OK(call)                                                                     \
  do {                                                                               \
    etcdrs_error *err = NULL;                                                        \
    etcdrs_status st_ = (call);                                                      \
    ok_at(st_, err, #call, __LINE__);                                                \
  } while (0)

static void fails_at(etcdrs_status want, etcdrs_status st, etcdrs_error *err, const char *call,
                     int line) {
  checks++;
  if (st != want || err == NULL || etcdrs_error_code(err) != want) {
    etcdrs_str j = etcdrs_error_json(err);
    fprintf(stderr, "line %d: %s: wanted %u, got %u: %.*s\n", line, call, want, st, (int)j.len,
            j.data ? j.data : "");
    exit(1);
  }
  /* The error object carries etcd's message for its code. */
  etcdrs_str m = etcdrs_error_message(err);
  etcdrs_str fixed = etcdrs_code_message(want);
  if (m.len != fixed.len || memcmp(m.data, fixed.data, m.len) != 0) {
    fprintf(stderr, "line %d: %s: message differs from the code's\n", line, call);
    exit(1);
  }
  etcdrs_error_free(err);
}

/* Run `call` and require it to fail with status `code` and a matching error object. */
#define FAILS(code, call)                                                            \
  do {                                                                               \
    etcdrs_error *err = NULL;                                                        \
    etcdrs_status st_ = (call);                                                      \
    fails_at((code), st_, err, #call, __LINE__);                                     \
  } while (0)

static int str_is(etcdrs_str s, const char *want) {
  return s.data != NULL && s.len == strlen(want) && memcmp(s.data, want, s.len) == 0;
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* Borrowed text is not NUL-terminated: search it by length. */
static int str_contains(etcdrs_str s, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; s.data != NULL && i + n <= s.len; i++) {
    if (memcmp(s.data + i, needle, n) == 0) return 1;
  }
  return 0;
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static etcdrs_node *start_single(const char *dir, const char *name) {
  char data[512];
  snprintf(data, sizeof data, "%s/%s", dir, name);
  etcdrs_config *cfg = NULL;
  OK(etcdrs_config_new(name, strlen(name), data, strlen(data), &cfg, &err));
  etcdrs_node *node = NULL;
  OK(etcdrs_node_start(cfg, &node, &err));
  etcdrs_config_free(cfg);
  return node;
}

/* ---------------------------------------------------------------- errors, no member */

static void test_errors_without_a_member(void) {
  etcdrs_response *r = NULL;
  etcdrs_client *c = NULL;

  /* Freeing NULL does nothing. */
  etcdrs_config_free(NULL);
  etcdrs_node_free(NULL);
  etcdrs_client_free(NULL);
  etcdrs_response_free(NULL);
  etcdrs_watch_free(NULL);
  etcdrs_error_free(NULL);
  etcdrs_string_free(NULL);
  etcdrs_watch_cancel(NULL);

  /* Accessors on NULL answer nothing. */
  CHECK(etcdrs_error_code(NULL) == 0);
  CHECK(etcdrs_response_node(NULL) == NULL);
  CHECK(etcdrs_key_node_key(NULL).data == NULL);
  CHECK(etcdrs_key_node_child(NULL, 0) == NULL);
  CHECK(etcdrs_node_member_id(NULL) == 0);
  CHECK(strlen(etcdrs_version()) > 0);
  CHECK(str_is(etcdrs_code_message(ETCDRS_CODE_KEY_NOT_FOUND), "Key not found"));
  CHECK(str_is(etcdrs_code_message(ETCDRS_CODE_TEST_FAILED), "Compare failed"));
  CHECK(etcdrs_code_message(999).len == 0);

  /* NULL handles, keys and out-parameters are errors. */
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_get(NULL, S("/k"), false, false, false, &r, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_new(NULL, 5, 0, &c, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_new(S("http://127.0.0.1:1"), 0, NULL, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_node_start(NULL, NULL, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_node_failure(NULL, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_watch_next(NULL, 10, &r, &err));
  /* Without an error_out, the status still tells. */
  CHECK(etcdrs_client_get(NULL, S("/k"), false, false, false, &r, NULL) ==
        ETCDRS_CODE_NULL_ARGUMENT);
  CHECK(r == NULL);

  /* Invalid UTF-8 anywhere is refused. */
  FAILS(ETCDRS_CODE_INVALID_UTF8, etcdrs_client_new(S("http://\xff"), 0, &c, &err));
  etcdrs_config *cfg = NULL;
  FAILS(ETCDRS_CODE_INVALID_UTF8, etcdrs_config_new(S("\xc3\x28"), S("/tmp/x"), &cfg, &err));
  OK(etcdrs_config_new(S("n"), S("/tmp/never-started"), &cfg, &err));
  FAILS(ETCDRS_CODE_INVALID_CONFIG, etcdrs_config_set(cfg, S("no-such-flag"), S("1"), &err));
  FAILS(ETCDRS_CODE_INVALID_CONFIG, etcdrs_config_set(cfg, S("snapshot-count"), S("many"), &err));
  FAILS(ETCDRS_CODE_INVALID_CONFIG,
        etcdrs_config_set(cfg, S("initial-cluster-state"), S("old"), &err));
  FAILS(ETCDRS_CODE_INVALID_UTF8, etcdrs_config_set(cfg, S("name"), S("\xff"), &err));
  OK(etcdrs_config_set(cfg, S("election-timeout"), S("50"), &err));
  /* A config that does not validate does not start. */
  etcdrs_node *n = NULL;
  FAILS(ETCDRS_CODE_INVALID_CONFIG, etcdrs_node_start(cfg, &n, &err));
  CHECK(n == NULL);
  etcdrs_config_free(cfg);

  /* Bad endpoints, and endpoints nobody serves. */
  FAILS(ETCDRS_CODE_INVALID_ARGUMENT, etcdrs_client_new(S("ftp://127.0.0.1:1"), 0, &c, &err));
  OK(etcdrs_client_new(S("http://127.0.0.1:1"), 2000, &c, &err));
  FAILS(ETCDRS_CODE_CONNECTION_FAILED,
        etcdrs_client_get(c, S("/k"), false, false, false, &r, &err));
  etcdrs_client_free(c);
}

/* ---------------------------------------------------------------- every operation */

static void check_node(const etcdrs_key_node *n, const char *key, const char *value) {
  CHECK(n != NULL);
  CHECK(str_is(etcdrs_key_node_key(n), key));
  if (value == NULL) {
    CHECK(etcdrs_key_node_value(n).data == NULL);
  } else {
    CHECK(str_is(etcdrs_key_node_value(n), value));
  }
}

/* Every operation through one client; `tag` keeps the two clients' keys apart. */
static void exercise(etcdrs_client *c, const char *tag) {
  etcdrs_response *r = NULL;
  char k[256], dir[256], lock[64];
  snprintf(dir, sizeof dir, "/%s", tag);
  snprintf(lock, sizeof lock, "lock-%s", tag);

  /* set, then get: value, action, indices, and etcd's JSON. */
  snprintf(k, sizeof k, "/%s/foo", tag);
  OK(etcdrs_client_set(c, k, strlen(k), S("Hello World"), ETCDRS_NO_TTL, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "set"));
  uint64_t set_index = etcdrs_key_node_modified_index(etcdrs_response_node(r));
  CHECK(set_index > 0);
  CHECK(etcdrs_response_etcd_index(r) == set_index);
  CHECK(etcdrs_response_raft_index(r) > 0);
  CHECK(etcdrs_response_raft_term(r) > 0);
  CHECK(etcdrs_response_prev_node(r) == NULL);
  etcdrs_response_free(r);

  OK(etcdrs_client_get(c, k, strlen(k), false, false, false, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "get"));
  check_node(etcdrs_response_node(r), k, "Hello World");
  CHECK(!etcdrs_key_node_is_dir(etcdrs_response_node(r)));
  CHECK(etcdrs_key_node_ttl(etcdrs_response_node(r)) == 0);
  CHECK(!etcdrs_key_node_expiration(etcdrs_response_node(r), NULL));
  CHECK(etcdrs_key_node_created_index(etcdrs_response_node(r)) == set_index);
  {
    char want[512];
    snprintf(want, sizeof want,
             "{\"action\":\"get\",\"node\":{\"key\":\"%s\",\"value\":\"Hello World\","
             "\"modifiedIndex\":%llu,\"createdIndex\":%llu}}",
             k, (unsigned long long)set_index, (unsigned long long)set_index);
    CHECK(str_is(etcdrs_response_json(r), want));
  }
  etcdrs_response_free(r);

  /* A quorum read, and a key that does not exist. */
  OK(etcdrs_client_get(c, k, strlen(k), false, false, true, &r, &err));
  etcdrs_response_free(r);
  {
    etcdrs_error *err = NULL;
    CHECK(etcdrs_client_get(c, S("/no/such/key"), false, false, false, &r, &err) ==
          ETCDRS_CODE_KEY_NOT_FOUND);
    CHECK(str_is(etcdrs_error_cause(err), "/no")); /* etcd names the first missing part */
    CHECK(etcdrs_error_index(err) >= set_index);
    CHECK(str_contains(etcdrs_error_json(err), "\"errorCode\":100"));
    etcdrs_error_free(err);
  }

  /* compare-and-swap: by value, by index, and a failing comparison. */
  OK(etcdrs_client_compare_and_swap(c, k, strlen(k), S("Goodbye"), S("Hello World"), 0,
                                    ETCDRS_NO_TTL, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "compareAndSwap"));
  check_node(etcdrs_response_prev_node(r), k, "Hello World");
  uint64_t cas_index = etcdrs_key_node_modified_index(etcdrs_response_node(r));
  etcdrs_response_free(r);
  OK(etcdrs_client_compare_and_swap(c, k, strlen(k), S("again"), NULL, 0, cas_index,
                                    ETCDRS_NO_TTL, &r, &err));
  etcdrs_response_free(r);
  FAILS(ETCDRS_CODE_TEST_FAILED, etcdrs_client_compare_and_swap(c, k, strlen(k), S("x"),
                                                                S("nope"), 0, ETCDRS_NO_TTL,
                                                                &r, &err));
  FAILS(ETCDRS_CODE_INVALID_ARGUMENT, etcdrs_client_compare_and_swap(c, k, strlen(k), S("x"),
                                                                     NULL, 0, 0,
                                                                     ETCDRS_NO_TTL, &r, &err));
  FAILS(ETCDRS_CODE_INVALID_UTF8, etcdrs_client_compare_and_swap(c, k, strlen(k), S("x"),
                                                                 S("\xff"), 0, ETCDRS_NO_TTL,
                                                                 &r, &err));

  /* create (and again: 105), update (and a missing key: 100), with a TTL. */
  snprintf(k, sizeof k, "/%s/boo", tag);
  OK(etcdrs_client_create(c, k, strlen(k), S("Hello World"), ETCDRS_NO_TTL, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "create"));
  etcdrs_response_free(r);
  FAILS(ETCDRS_CODE_NODE_EXIST,
        etcdrs_client_create(c, k, strlen(k), S("again"), ETCDRS_NO_TTL, &r, &err));
  OK(etcdrs_client_update(c, k, strlen(k), S("Merhaba"), 60, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "update"));
  {
    const etcdrs_key_node *n = etcdrs_response_node(r);
    int64_t when = 0;
    CHECK(etcdrs_key_node_ttl(n) == 60);
    CHECK(etcdrs_key_node_expiration(n, &when));
    CHECK(when > (int64_t)time(NULL) * 1000000000LL);
    check_node(etcdrs_response_prev_node(r), k, "Hello World");
  }
  etcdrs_response_free(r);
  FAILS(ETCDRS_CODE_KEY_NOT_FOUND,
        etcdrs_client_update(c, S("/missing"), S("x"), ETCDRS_NO_TTL, &r, &err));

  /* Directories: create_dir, set_dir, update_dir, a recursive sorted listing. */
  snprintf(k, sizeof k, "/%s/dir", tag);
  OK(etcdrs_client_create_dir(c, k, strlen(k), ETCDRS_NO_TTL, &r, &err));
  CHECK(etcdrs_key_node_is_dir(etcdrs_response_node(r)));
  etcdrs_response_free(r);
  FAILS(ETCDRS_CODE_NODE_EXIST, etcdrs_client_create_dir(c, k, strlen(k), ETCDRS_NO_TTL, &r, &err));
  OK(etcdrs_client_update_dir(c, k, strlen(k), 100, &r, &err));
  CHECK(etcdrs_key_node_ttl(etcdrs_response_node(r)) == 100);
  etcdrs_response_free(r);
  snprintf(k, sizeof k, "/%s/other", tag);
  OK(etcdrs_client_set_dir(c, k, strlen(k), ETCDRS_NO_TTL, &r, &err));
  etcdrs_response_free(r);
  snprintf(k, sizeof k, "/%s/dir/inner", tag);
  OK(etcdrs_client_set(c, k, strlen(k), S("deep"), ETCDRS_NO_TTL, &r, &err));
  etcdrs_response_free(r);
  /* A plain delete does not take a directory. */
  FAILS(ETCDRS_CODE_NOT_FILE, etcdrs_client_delete(c, dir, strlen(dir), &r, &err));

  OK(etcdrs_client_get(c, dir, strlen(dir), true, true, false, &r, &err));
  {
    const etcdrs_key_node *root = etcdrs_response_node(r);
    CHECK(etcdrs_key_node_is_dir(root));
    /* boo, dir, foo, other — in key order. */
    CHECK(etcdrs_key_node_children_count(root) == 4);
    char want[256];
    snprintf(want, sizeof want, "/%s/boo", tag);
    check_node(etcdrs_key_node_child(root, 0), want, "Merhaba");
    const etcdrs_key_node *d = etcdrs_key_node_child(root, 1);
    snprintf(want, sizeof want, "/%s/dir", tag);
    check_node(d, want, NULL);
    CHECK(etcdrs_key_node_children_count(d) == 1);
    snprintf(want, sizeof want, "/%s/dir/inner", tag);
    check_node(etcdrs_key_node_child(d, 0), want, "deep");
    CHECK(etcdrs_key_node_child(d, 1) == NULL);
    snprintf(want, sizeof want, "/%s/foo", tag);
    check_node(etcdrs_key_node_child(root, 2), want, "again");
    CHECK(etcdrs_key_node_child(root, 4) == NULL);
  }
  etcdrs_response_free(r);

  /* In-order keys. */
  snprintf(k, sizeof k, "/%s/queue", tag);
  OK(etcdrs_client_create_in_order(c, k, strlen(k), S("job1"), ETCDRS_NO_TTL, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "create"));
  CHECK(etcdrs_key_node_key(etcdrs_response_node(r)).len == strlen(k) + 21);
  etcdrs_response_free(r);

  /* exists. */
  bool exists = false;
  OK(etcdrs_client_exists(c, k, strlen(k), &exists, &err));
  CHECK(exists);
  OK(etcdrs_client_exists(c, S("/nothing/here"), &exists, &err));
  CHECK(!exists);
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_exists(c, k, strlen(k), NULL, &err));

  /* A watch from history, and one that times out. */
  snprintf(k, sizeof k, "/%s/foo", tag);
  OK(etcdrs_client_watch(c, k, strlen(k), set_index, false, 5000, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "set"));
  CHECK(etcdrs_key_node_modified_index(etcdrs_response_node(r)) == set_index);
  etcdrs_response_free(r);
  OK(etcdrs_client_watch(c, dir, strlen(dir), set_index + 1, true, 5000, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "compareAndSwap"));
  etcdrs_response_free(r);
  FAILS(ETCDRS_CODE_TIMEOUT, etcdrs_client_watch(c, k, strlen(k), 0, false, 200, &r, &err));

  /* compare-and-delete, delete, delete_dir. */
  FAILS(ETCDRS_CODE_TEST_FAILED,
        etcdrs_client_compare_and_delete(c, k, strlen(k), S("nope"), 0, &r, &err));
  OK(etcdrs_client_compare_and_delete(c, k, strlen(k), S("again"), 0, &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "compareAndDelete"));
  etcdrs_response_free(r);
  snprintf(k, sizeof k, "/%s/boo", tag);
  OK(etcdrs_client_delete(c, k, strlen(k), &r, &err));
  CHECK(str_is(etcdrs_response_action(r), "delete"));
  check_node(etcdrs_response_prev_node(r), k, "Merhaba");
  etcdrs_response_free(r);
  snprintf(k, sizeof k, "/%s/dir", tag);
  FAILS(ETCDRS_CODE_DIR_NOT_EMPTY, etcdrs_client_delete_dir(c, k, strlen(k), false, &r, &err));
  OK(etcdrs_client_delete_dir(c, k, strlen(k), true, &r, &err));
  etcdrs_response_free(r);
  FAILS(ETCDRS_CODE_KEY_NOT_FOUND,
        etcdrs_client_get(c, k, strlen(k), false, false, false, &r, &err));

  /* machines, members, leader, stats. */
  char *text = NULL;
  OK(etcdrs_client_machines(c, &text, &err));
  CHECK(strncmp(text, "http://127.0.0.1:", 17) == 0);
  etcdrs_string_free(text);
  OK(etcdrs_client_members(c, &text, &err));
  CHECK(contains(text, "\"members\":[{\"id\":"));
  CHECK(contains(text, "\"clientURLs\":[\"http://127.0.0.1:"));
  etcdrs_string_free(text);
  OK(etcdrs_client_leader(c, &text, &err));
  CHECK(contains(text, "\"peerURLs\""));
  etcdrs_string_free(text);
  OK(etcdrs_client_stats(c, S("store"), &text, &err));
  CHECK(contains(text, "\"setsSuccess\":"));
  etcdrs_string_free(text);
  OK(etcdrs_client_stats(c, S("self"), &text, &err));
  CHECK(contains(text, "\"state\":\"StateLeader\""));
  etcdrs_string_free(text);
  OK(etcdrs_client_stats(c, S("leader"), &text, &err));
  CHECK(contains(text, "\"followers\":{}"));
  etcdrs_string_free(text);
  FAILS(ETCDRS_CODE_INVALID_ARGUMENT, etcdrs_client_stats(c, S("disk"), &text, &err));

  /* The lock module: acquire, retrieve, renew, a timed-out waiter, release. */
  uint64_t index = 0, again = 0;
  OK(etcdrs_client_lock_acquire(c, lock, strlen(lock), 30, S("holder"), -1, &index, &err));
  CHECK(index > 0);
  OK(etcdrs_client_lock_retrieve(c, lock, strlen(lock), ETCDRS_LOCK_FIELD_VALUE, &text, &err));
  CHECK(strcmp(text, "holder") == 0);
  etcdrs_string_free(text);
  OK(etcdrs_client_lock_retrieve(c, lock, strlen(lock), ETCDRS_LOCK_FIELD_INDEX, &text, &err));
  CHECK(strtoull(text, NULL, 10) == index);
  etcdrs_string_free(text);
  FAILS(ETCDRS_CODE_INVALID_FIELD,
        etcdrs_client_lock_retrieve(c, lock, strlen(lock), 7, &text, &err));
  OK(etcdrs_client_lock_renew(c, lock, strlen(lock), index, NULL, 0, 30, &err));
  OK(etcdrs_client_lock_renew(c, lock, strlen(lock), 0, S("holder"), 30, &err));
  FAILS(ETCDRS_CODE_INDEX_OR_VALUE_REQUIRED,
        etcdrs_client_lock_renew(c, lock, strlen(lock), 0, NULL, 0, 30, &err));
  FAILS(ETCDRS_CODE_INDEX_VALUE_MUTEX,
        etcdrs_client_lock_release(c, lock, strlen(lock), index, S("holder"), &err));
  FAILS(ETCDRS_CODE_KEY_NOT_FOUND,
        etcdrs_client_lock_release(c, lock, strlen(lock), index + 1000, NULL, 0, &err));
  FAILS(ETCDRS_CODE_TIMEOUT,
        etcdrs_client_lock_acquire(c, lock, strlen(lock), 30, NULL, 0, 1, &again, &err));
  OK(etcdrs_client_lock_release(c, lock, strlen(lock), index, NULL, 0, &err));
  OK(etcdrs_client_lock_acquire(c, lock, strlen(lock), 30, NULL, 0, 0, &again, &err));
  CHECK(again > index);
  OK(etcdrs_client_lock_release(c, lock, strlen(lock), again, NULL, 0, &err));

  /* The leader module. */
  OK(etcdrs_client_set_leader(c, lock, strlen(lock), S("leader-1"), 60, -1, &index, &err));
  OK(etcdrs_client_set_leader(c, lock, strlen(lock), S("leader-1"), 60, -1, &again, &err));
  CHECK(again == index);
  OK(etcdrs_client_get_leader(c, lock, strlen(lock), &text, &err));
  CHECK(strcmp(text, "leader-1") == 0);
  etcdrs_string_free(text);
  FAILS(ETCDRS_CODE_NAME_REQUIRED,
        etcdrs_client_set_leader(c, lock, strlen(lock), S(""), 60, -1, &again, &err));
  OK(etcdrs_client_delete_leader(c, lock, strlen(lock), S("leader-1"), &err));
  OK(etcdrs_client_get_leader(c, lock, strlen(lock), &text, &err));
  CHECK(strcmp(text, "") == 0);
  etcdrs_string_free(text);
}

static void test_a_member_in_process(const char *dir) {
  etcdrs_node *node = start_single(dir, "single");
  CHECK(etcdrs_node_member_id(node) != 0);
  OK(etcdrs_node_wait_ready(node, 1000, &err));
  /* A running member has not failed. */
  OK(etcdrs_node_failure(node, &err));
  etcdrs_str urls = etcdrs_node_client_urls(node);
  CHECK(urls.len > strlen("http://127.0.0.1:"));
  CHECK(etcdrs_node_peer_urls(node).len > 0);

  etcdrs_client *local = NULL, *remote = NULL;
  OK(etcdrs_node_client(node, &local, &err));
  OK(etcdrs_client_new(urls.data, urls.len, 10000, &remote, &err));
  exercise(local, "local");
  exercise(remote, "remote");

  /* Both clients see the same store: what one wrote, the other reads. */
  etcdrs_response *r = NULL;
  OK(etcdrs_client_set(local, S("/shared"), S("v"), ETCDRS_NO_TTL, &r, &err));
  etcdrs_response_free(r);
  OK(etcdrs_client_get(remote, S("/shared"), false, false, true, &r, &err));
  check_node(etcdrs_response_node(r), "/shared", "v");
  etcdrs_response_free(r);

  /* After stop, the in-process client says so; a second stop does nothing. */
  OK(etcdrs_node_stop(node, &err));
  OK(etcdrs_node_stop(node, &err));
  FAILS(ETCDRS_CODE_STOPPED,
        etcdrs_client_set(local, S("/after"), S("stop"), ETCDRS_NO_TTL, &r, &err));
  FAILS(ETCDRS_CODE_STOPPED, etcdrs_client_get(local, S("/shared"), false, false, false, &r, &err));
  etcdrs_client_free(local);
  etcdrs_client_free(remote);
  etcdrs_node_free(node);
}

/* ---------------------------------------------------------------- watch across threads */

struct writer_args {
  etcdrs_client *client;
  int count;
};

static void *writer(void *p) {
  struct writer_args *a = p;
  for (int i = 0; i < a->count; i++) {
    char k[64];
    snprintf(k, sizeof k, "/jobs/%d", i);
    etcdrs_response *r = NULL;
    OK(etcdrs_client_set(a->client, k, strlen(k), S("x"), ETCDRS_NO_TTL, &r, &err));
    etcdrs_response_free(r);
  }
  return NULL;
}

static void *canceller(void *p) {
  sleep_ms(300);
  etcdrs_watch_cancel((etcdrs_watch *)p);
  return NULL;
}

static void test_a_watch_polled_while_others_write_and_cancel(const char *dir) {
  etcdrs_node *node = start_single(dir, "watch");
  etcdrs_client *c = NULL;
  OK(etcdrs_node_client(node, &c, &err));
  etcdrs_response *r = NULL;
  OK(etcdrs_client_get(c, S("/"), false, false, false, &r, &err));
  uint64_t from = etcdrs_response_etcd_index(r) + 1;
  etcdrs_response_free(r);

  etcdrs_watch *w = NULL;
  OK(etcdrs_client_watch_stream(c, S("/jobs"), from, true, &w, &err));
  /* Nothing yet: a short poll times out, and loses nothing. */
  FAILS(ETCDRS_CODE_TIMEOUT, etcdrs_watch_next(w, 50, &r, &err));

  struct writer_args a = {c, 5};
  pthread_t wt, ct;
  CHECK(pthread_create(&wt, NULL, writer, &a) == 0);
  for (int i = 0; i < 5; i++) {
    OK(etcdrs_watch_next(w, 10000, &r, &err));
    char want[64];
    snprintf(want, sizeof want, "/jobs/%d", i);
    CHECK(str_is(etcdrs_response_action(r), "set"));
    check_node(etcdrs_response_node(r), want, "x");
    etcdrs_response_free(r);
  }
  CHECK(pthread_join(wt, NULL) == 0);

  /* A third thread cancels while this one waits. */
  CHECK(pthread_create(&ct, NULL, canceller, w) == 0);
  FAILS(ETCDRS_CODE_CANCELLED, etcdrs_watch_next(w, 20000, &r, &err));
  CHECK(pthread_join(ct, NULL) == 0);
  FAILS(ETCDRS_CODE_CANCELLED, etcdrs_watch_next(w, 10, &r, &err));
  etcdrs_watch_free(w);

  /* A watch of the HTTP client behaves the same. */
  etcdrs_client *h = NULL;
  etcdrs_str urls = etcdrs_node_client_urls(node);
  OK(etcdrs_client_new(urls.data, urls.len, 5000, &h, &err));
  OK(etcdrs_client_watch_stream(h, S("/jobs"), from, true, &w, &err));
  for (int i = 0; i < 5; i++) {
    OK(etcdrs_watch_next(w, 10000, &r, &err));
    etcdrs_response_free(r);
  }
  FAILS(ETCDRS_CODE_TIMEOUT, etcdrs_watch_next(w, 100, &r, &err));
  etcdrs_watch_cancel(w);
  FAILS(ETCDRS_CODE_CANCELLED, etcdrs_watch_next(w, 1000, &r, &err));
  etcdrs_watch_free(w);
  etcdrs_client_free(h);
  etcdrs_client_free(c);
  etcdrs_node_free(node);
}

/* ---------------------------------------------------------------- v3 */

/* Run `call` and require a v3 failure: gRPC `code` and etcd's message. */
static void v3_fails_at(etcdrs_status want, const char *message, etcdrs_status st,
                        etcdrs_error *err, const char *call, int line) {
  checks++;
  etcdrs_str m = etcdrs_error_message(err);
  if (st != want || err == NULL || etcdrs_error_code(err) != want || !str_is(m, message) ||
      !str_contains(etcdrs_error_json(err), "\"code\":")) {
    etcdrs_str j = etcdrs_error_json(err);
    fprintf(stderr, "line %d: %s: wanted %u %s, got %u: %.*s\n", line, call, want, message, st,
            (int)j.len, j.data ? j.data : "");
    exit(1);
  }
  CHECK(etcdrs_error_cause(err).len == 0);
  etcdrs_error_free(err);
}

#define V3_FAILS(code, message, call)                                                \
  do {                                                                               \
    etcdrs_error *err = NULL;                                                        \
    etcdrs_status st_ = (call);                                                      \
    v3_fails_at((code), (message), st_, err, #call, __LINE__);                       \
  } while (0)

static int bytes_is(etcdrs_bytes b, const char *want) {
  size_t n = strlen(want);
  return b.len == n && (n == 0 || (b.data != NULL && memcmp(b.data, want, n) == 0));
}

/* Every v3 call through `c`, on keys under `p` (a fresh prefix per client). */
static void exercise_v3(etcdrs_client *c, const char *p) {
  char k1[64], k2[64], end[64];
  snprintf(k1, sizeof k1, "%s/a", p);
  snprintf(k2, sizeof k2, "%s/b", p);
  snprintf(end, sizeof end, "%s0", p); /* '/' + 1: every key under p/ */
  etcdrs_v3_response *r = NULL;

  /* Put, with the previous key-value; bytes may hold a NUL. */
  OK(etcdrs_client_v3_put(c, k1, strlen(k1), S("one"), NULL, &r, &err));
  int64_t rev1 = etcdrs_v3_response_header(r).revision;
  CHECK(rev1 > 1 && etcdrs_v3_response_header(r).cluster_id != 0);
  CHECK(etcdrs_v3_response_kv_count(r) == 0);
  etcdrs_v3_response_free(r);
  etcdrs_put_options prev = {0};
  prev.prev_kv = true;
  OK(etcdrs_client_v3_put(c, k1, strlen(k1), "t\0o", 3, &prev, &r, &err));
  CHECK(etcdrs_v3_response_kv_count(r) == 1);
  CHECK(bytes_is(etcdrs_v3_response_kv(r, 0).value, "one"));
  etcdrs_v3_response_free(r);
  OK(etcdrs_client_v3_put(c, k2, strlen(k2), NULL, 0, NULL, &r, &err));
  etcdrs_v3_response_free(r);

  /* Range: one key, then the prefix sorted descending with a limit. */
  OK(etcdrs_client_v3_range(c, k1, strlen(k1), NULL, 0, NULL, &r, &err));
  CHECK(etcdrs_v3_response_kv_count(r) == 1 && etcdrs_v3_response_count(r) == 1);
  etcdrs_kv kv = etcdrs_v3_response_kv(r, 0);
  CHECK(bytes_is(kv.key, k1) && kv.value.len == 3 && memcmp(kv.value.data, "t\0o", 3) == 0);
  CHECK(kv.create_revision == rev1 && kv.mod_revision == rev1 + 1 && kv.version == 2);
  CHECK(kv.lease == 0);
  CHECK(etcdrs_v3_response_kv(r, 1).key.data == NULL); /* past the end: all zero */
  CHECK(str_contains(etcdrs_v3_response_json(r), "\"count\":\"1\""));
  etcdrs_v3_response_free(r);
  etcdrs_range_options o = {0};
  o.limit = 1;
  o.sort_order = 2;
  OK(etcdrs_client_v3_range(c, k1, strlen(k1), end, strlen(end), &o, &r, &err));
  CHECK(etcdrs_v3_response_count(r) == 2 && etcdrs_v3_response_more(r));
  CHECK(bytes_is(etcdrs_v3_response_kv(r, 0).key, k2));
  CHECK(bytes_is(etcdrs_v3_response_kv(r, 0).value, ""));
  etcdrs_v3_response_free(r);
  /* An old revision, and one not yet written. */
  etcdrs_range_options old = {0};
  old.revision = rev1;
  OK(etcdrs_client_v3_range(c, k1, strlen(k1), NULL, 0, &old, &r, &err));
  CHECK(bytes_is(etcdrs_v3_response_kv(r, 0).value, "one"));
  etcdrs_v3_response_free(r);
  old.revision = rev1 + 1000000;
  V3_FAILS(ETCDRS_GRPC_OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision",
           etcdrs_client_v3_range(c, k1, strlen(k1), NULL, 0, &old, &r, &err));

  /* A transaction: compare a value, then put and read; the other branch deletes. */
  etcdrs_txn *t = etcdrs_txn_new();
  OK(etcdrs_txn_compare(t, k2, strlen(k2), NULL, 0, ETCDRS_COMPARE_VALUE, ETCDRS_COMPARE_EQUAL,
                        0, NULL, 0, &err));
  OK(etcdrs_txn_compare(t, k1, strlen(k1), NULL, 0, ETCDRS_COMPARE_VERSION,
                        ETCDRS_COMPARE_GREATER, 1, NULL, 0, &err));
  OK(etcdrs_txn_put(t, true, k2, strlen(k2), S("txn"), NULL, &err));
  OK(etcdrs_txn_range(t, true, k2, strlen(k2), NULL, 0, NULL, &err));
  OK(etcdrs_txn_delete_range(t, false, k2, strlen(k2), NULL, 0, false, &err));
  OK(etcdrs_client_v3_txn(c, t, &r, &err));
  CHECK(etcdrs_v3_response_succeeded(r) && etcdrs_v3_response_op_count(r) == 2);
  const etcdrs_v3_response *read_op = etcdrs_v3_response_op(r, 1);
  CHECK(bytes_is(etcdrs_v3_response_kv(read_op, 0).value, "txn"));
  CHECK(etcdrs_v3_response_op(r, 2) == NULL);
  etcdrs_v3_response_free(r);
  /* Sent again, the value compare fails: the delete runs instead. */
  OK(etcdrs_client_v3_txn(c, t, &r, &err));
  CHECK(!etcdrs_v3_response_succeeded(r) && etcdrs_v3_response_op_count(r) == 1);
  CHECK(etcdrs_v3_response_count(etcdrs_v3_response_op(r, 0)) == 1);
  etcdrs_v3_response_free(r);
  etcdrs_txn_free(t);
  /* A duplicate key in one txn is etcd's error. */
  t = etcdrs_txn_new();
  OK(etcdrs_txn_put(t, true, k1, strlen(k1), S("x"), NULL, &err));
  OK(etcdrs_txn_put(t, true, k1, strlen(k1), S("y"), NULL, &err));
  V3_FAILS(ETCDRS_GRPC_INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request",
           etcdrs_client_v3_txn(c, t, &r, &err));
  FAILS(ETCDRS_CODE_INVALID_ARGUMENT,
        etcdrs_txn_compare(t, S("k"), NULL, 0, 99, ETCDRS_COMPARE_EQUAL, 0, NULL, 0, &err));
  etcdrs_txn_free(t);

  /* Leases: grant, attach, time to live with keys, renew, revoke. */
  OK(etcdrs_client_v3_lease_grant(c, 60, 0, &r, &err));
  int64_t lease = etcdrs_v3_response_lease_id(r);
  CHECK(lease > 0 && etcdrs_v3_response_ttl(r) == 60);
  etcdrs_v3_response_free(r);
  etcdrs_put_options leased = {0};
  leased.lease = lease;
  OK(etcdrs_client_v3_put(c, k2, strlen(k2), S("leased"), &leased, &r, &err));
  etcdrs_v3_response_free(r);
  OK(etcdrs_client_v3_lease_time_to_live(c, lease, true, &r, &err));
  CHECK(etcdrs_v3_response_granted_ttl(r) == 60 && etcdrs_v3_response_ttl(r) > 50);
  CHECK(etcdrs_v3_response_kv_count(r) == 1 && bytes_is(etcdrs_v3_response_kv(r, 0).key, k2));
  etcdrs_v3_response_free(r);
  OK(etcdrs_client_v3_lease_keep_alive_once(c, lease, &r, &err));
  CHECK(etcdrs_v3_response_ttl(r) == 60 && etcdrs_v3_response_lease_id(r) == lease);
  etcdrs_v3_response_free(r);
  etcdrs_lease_keeper *keeper = NULL;
  OK(etcdrs_client_v3_lease_keep_alive(c, lease, &keeper, &err));
  CHECK(etcdrs_lease_keeper_ttl(keeper) == 60);
  OK(etcdrs_client_v3_lease_revoke(c, lease, &r, &err));
  etcdrs_v3_response_free(r);
  etcdrs_lease_keeper_free(keeper);
  keeper = NULL;
  OK(etcdrs_client_v3_range(c, k2, strlen(k2), NULL, 0, NULL, &r, &err));
  CHECK(etcdrs_v3_response_kv_count(r) == 0);
  etcdrs_v3_response_free(r);
  V3_FAILS(ETCDRS_GRPC_NOT_FOUND, "etcdserver: requested lease not found",
           etcdrs_client_v3_lease_revoke(c, lease, &r, &err));
  V3_FAILS(ETCDRS_GRPC_NOT_FOUND, "etcdserver: requested lease not found",
           etcdrs_client_v3_lease_keep_alive(c, lease, &keeper, &err));
  CHECK(keeper == NULL); /* out-parameters are written only on success */
  V3_FAILS(ETCDRS_GRPC_NOT_FOUND, "etcdserver: requested lease not found",
           etcdrs_client_v3_put(c, k2, strlen(k2), S("v"), &leased, &r, &err));

  /* Delete the prefix with the deleted key-values. */
  OK(etcdrs_client_v3_delete_range(c, k1, strlen(k1), end, strlen(end), true, &r, &err));
  CHECK(etcdrs_v3_response_count(r) == 1 && etcdrs_v3_response_kv_count(r) == 1);
  etcdrs_v3_response_free(r);

  /* Bad input: etcd's errors from the member, library errors before it. */
  V3_FAILS(ETCDRS_GRPC_INVALID_ARGUMENT, "etcdserver: key is not provided",
           etcdrs_client_v3_put(c, "", 0, S("v"), NULL, &r, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_v3_put(c, NULL, 0, S("v"), NULL, &r, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_v3_put(c, S("k"), NULL, 3, NULL, &r, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_v3_range(c, S("k"), NULL, 0, NULL, NULL, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_v3_range(NULL, S("k"), NULL, 0, NULL, &r, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_client_v3_txn(c, NULL, &r, &err));
  FAILS(ETCDRS_CODE_NULL_ARGUMENT, etcdrs_txn_put(NULL, true, S("k"), S("v"), NULL, &err));
  /* Accessors of NULL answer zero. */
  CHECK(etcdrs_v3_response_kv_count(NULL) == 0 && etcdrs_v3_response_header(NULL).revision == 0);
  CHECK(etcdrs_v3_response_json(NULL).data == NULL && etcdrs_v3_response_op(NULL, 0) == NULL);
  etcdrs_v3_response_free(NULL);
  etcdrs_txn_free(NULL);
  etcdrs_v3_watch_free(NULL);
  etcdrs_v3_watch_cancel(NULL);
  etcdrs_lease_keeper_free(NULL);
}

struct v3_writer_args {
  etcdrs_client *client;
  const char *prefix;
  int count;
};

static void *v3_writer(void *p) {
  struct v3_writer_args *a = p;
  for (int i = 0; i < a->count; i++) {
    char k[64];
    snprintf(k, sizeof k, "%s/%d", a->prefix, i);
    etcdrs_v3_response *r = NULL;
    OK(etcdrs_client_v3_put(a->client, k, strlen(k), S("x"), NULL, &r, &err));
    etcdrs_v3_response_free(r);
  }
  return NULL;
}

static void *v3_canceller(void *p) {
  sleep_ms(300);
  etcdrs_v3_watch_cancel((etcdrs_v3_watch *)p);
  return NULL;
}

/* A v3 watch through `c`: polled while another thread writes and a third cancels; then
 * a watch from an old revision replays it, and one below the compaction is cancelled. */
static void watch_v3(etcdrs_client *c, const char *prefix) {
  char end[64];
  snprintf(end, sizeof end, "%s0", prefix);
  etcdrs_v3_watch *w = NULL;
  etcdrs_v3_watch_options o = {0};
  o.prev_kv = true;
  OK(etcdrs_client_v3_watch(c, prefix, strlen(prefix), end, strlen(end), &o, &w, &err));
  etcdrs_v3_response *r = NULL;
  FAILS(ETCDRS_CODE_TIMEOUT, etcdrs_v3_watch_next(w, 50, &r, &err));

  struct v3_writer_args a = {c, prefix, 5};
  pthread_t wt, ct;
  CHECK(pthread_create(&wt, NULL, v3_writer, &a) == 0);
  int seen = 0;
  int64_t first_rev = 0;
  while (seen < 5) {
    OK(etcdrs_v3_watch_next(w, 10000, &r, &err));
    for (size_t i = 0; i < etcdrs_v3_response_event_count(r); i++, seen++) {
      etcdrs_v3_event e = etcdrs_v3_response_event(r, i);
      char want[64];
      snprintf(want, sizeof want, "%s/%d", prefix, seen);
      CHECK(e.event_type == ETCDRS_EVENT_PUT && bytes_is(e.kv.key, want));
      CHECK(!e.has_prev_kv && e.kv.version == 1);
      if (first_rev == 0) first_rev = e.kv.mod_revision;
    }
    etcdrs_v3_response_free(r);
  }
  CHECK(seen == 5);
  CHECK(pthread_join(wt, NULL) == 0);
  CHECK(pthread_create(&ct, NULL, v3_canceller, w) == 0);
  FAILS(ETCDRS_CODE_CANCELLED, etcdrs_v3_watch_next(w, 20000, &r, &err));
  CHECK(pthread_join(ct, NULL) == 0);
  FAILS(ETCDRS_CODE_CANCELLED, etcdrs_v3_watch_next(w, 10, &r, &err));
  etcdrs_v3_watch_free(w);

  /* From an old revision: the history comes first; a delete has its prev_kv. */
  char k0[64];
  snprintf(k0, sizeof k0, "%s/0", prefix);
  OK(etcdrs_client_v3_delete_range(c, k0, strlen(k0), NULL, 0, false, &r, &err));
  etcdrs_v3_response_free(r);
  o.start_revision = first_rev;
  OK(etcdrs_client_v3_watch(c, prefix, strlen(prefix), end, strlen(end), &o, &w, &err));
  seen = 0;
  etcdrs_v3_event last;
  while (seen < 6) {
    OK(etcdrs_v3_watch_next(w, 10000, &r, &err));
    for (size_t i = 0; i < etcdrs_v3_response_event_count(r); i++, seen++) {
      last = etcdrs_v3_response_event(r, i);
      if (seen == 5) {
        CHECK(last.event_type == ETCDRS_EVENT_DELETE && bytes_is(last.kv.key, k0));
        CHECK(last.has_prev_kv && bytes_is(last.prev_kv.value, "x"));
      }
    }
    etcdrs_v3_response_free(r);
  }
  etcdrs_v3_watch_free(w);

  /* Below a compaction: the member cancels the watch with the compacted revision. */
  OK(etcdrs_client_v3_range(c, k0, strlen(k0), NULL, 0, NULL, &r, &err));
  int64_t now = etcdrs_v3_response_header(r).revision;
  etcdrs_v3_response_free(r);
  OK(etcdrs_client_v3_compact(c, now, true, &r, &err));
  etcdrs_v3_response_free(r);
  V3_FAILS(ETCDRS_GRPC_OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted",
           etcdrs_client_v3_compact(c, now, false, &r, &err));
  OK(etcdrs_client_v3_watch(c, prefix, strlen(prefix), end, strlen(end), &o, &w, &err));
  OK(etcdrs_v3_watch_next(w, 10000, &r, &err));
  CHECK(etcdrs_v3_response_canceled(r) && etcdrs_v3_response_compact_revision(r) == now);
  etcdrs_v3_response_free(r);
  FAILS(ETCDRS_CODE_CANCELLED, etcdrs_v3_watch_next(w, 5000, &r, &err));
  etcdrs_v3_watch_free(w);
}

static void test_v3_in_process_and_over_grpc(const char *dir) {
  etcdrs_node *node = start_single(dir, "v3");
  etcdrs_client *local = NULL, *remote = NULL;
  OK(etcdrs_node_client(node, &local, &err));
  etcdrs_str urls = etcdrs_node_client_urls(node);
  OK(etcdrs_client_new(urls.data, urls.len, 10000, &remote, &err));
  exercise_v3(local, "/local");
  exercise_v3(remote, "/remote");
  watch_v3(local, "/wl");
  watch_v3(remote, "/wr");
  /* What one client wrote, the other reads: one store. */
  etcdrs_v3_response *r = NULL;
  OK(etcdrs_client_v3_put(local, S("/shared3"), S("v"), NULL, &r, &err));
  int64_t rev = etcdrs_v3_response_header(r).revision;
  etcdrs_v3_response_free(r);
  OK(etcdrs_client_v3_range(remote, S("/shared3"), NULL, 0, NULL, &r, &err));
  CHECK(etcdrs_v3_response_kv(r, 0).mod_revision == rev);
  etcdrs_v3_response_free(r);
  /* A stopped member: its in-process client says so with etcd's v3 error. */
  OK(etcdrs_node_stop(node, &err));
  V3_FAILS(ETCDRS_GRPC_UNAVAILABLE, "etcdserver: server stopped",
           etcdrs_client_v3_range(local, S("/shared3"), NULL, 0, NULL, &r, &err));
  etcdrs_client_free(local);
  etcdrs_client_free(remote);
  etcdrs_node_free(node);
}

/* ---------------------------------------------------------------- https */

/* A member serving https with a certificate it made (auto-tls); a client reaches it only
   with TLS material (here: no certificate check, as for a self-signed member). */
static void test_https_needs_tls_material(const char *dir) {
  char data[512];
  snprintf(data, sizeof data, "%s/%s", dir, "tls");
  etcdrs_config *cfg = NULL;
  OK(etcdrs_config_new(S("tls"), data, strlen(data), &cfg, &err));
  OK(etcdrs_config_set(cfg, S("listen-client-urls"), S("https://127.0.0.1:0"), &err));
  OK(etcdrs_config_set(cfg, S("auto-tls"), S("true"), &err));
  etcdrs_node *node = NULL;
  OK(etcdrs_node_start(cfg, &node, &err));
  etcdrs_config_free(cfg);
  etcdrs_str urls = etcdrs_node_client_urls(node);
  CHECK(urls.len > 8 && strncmp(urls.data, "https://", 8) == 0);
  etcdrs_client *c = NULL;
  FAILS(ETCDRS_CODE_INVALID_ARGUMENT, etcdrs_client_new(urls.data, urls.len, 10000, &c, &err));
  FAILS(ETCDRS_CODE_INVALID_ARGUMENT, etcdrs_client_new_tls(urls.data, urls.len, 10000, NULL, 0,
                                                            NULL, 0, NULL, 0, false, &c, &err));
  FAILS(ETCDRS_CODE_INVALID_UTF8, etcdrs_client_new_tls(urls.data, urls.len, 10000, S("\xff"),
                                                        NULL, 0, NULL, 0, false, &c, &err));
  OK(etcdrs_client_new_tls(urls.data, urls.len, 10000, NULL, 0, NULL, 0, NULL, 0, true, &c, &err));
  etcdrs_response *r = NULL;
  OK(etcdrs_client_set(c, S("/secure"), S("yes"), ETCDRS_NO_TTL, &r, &err));
  etcdrs_response_free(r);
  OK(etcdrs_client_get(c, S("/secure"), false, false, true, &r, &err));
  check_node(etcdrs_response_node(r), "/secure", "yes");
  etcdrs_response_free(r);
  etcdrs_client_free(c);
  OK(etcdrs_node_stop(node, &err));
  etcdrs_node_free(node);
}

/* ---------------------------------------------------------------- auth */

/* Users and roles set up through the member's own client (it answers as the member, so
   it may), then clients over the network with and without a user. */
static void test_auth_needs_a_user(const char *dir) {
  etcdrs_node *node = start_single(dir, "auth");
  etcdrs_client *local = NULL, *root = NULL, *anonymous = NULL, *wrong = NULL;
  OK(etcdrs_node_client(node, &local, &err));
  const char *setup[][2] = {
      {"auth/user/add", "{\"name\":\"root\",\"password\":\"rootpw\"}"},
      {"auth/role/add", "{\"name\":\"root\"}"},
      {"auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}"},
      {"auth/enable", "{}"},
  };
  for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
    char *answer = NULL;
    OK(etcdrs_client_v3_call_json(local, setup[i][0], strlen(setup[i][0]), setup[i][1],
                                  strlen(setup[i][1]), &answer, &err));
    CHECK(strstr(answer, "\"header\"") != NULL);
    etcdrs_string_free(answer);
  }
  char *answer = NULL;
  FAILS(ETCDRS_CODE_INVALID_UTF8,
        etcdrs_client_v3_call_json(local, S("\xff"), S("{}"), &answer, &err));
  etcdrs_str urls = etcdrs_node_client_urls(node);
  OK(etcdrs_client_new_auth(urls.data, urls.len, 10000, NULL, 0, NULL, 0, NULL, 0, false,
                            S("root"), S("rootpw"), &root, &err));
  OK(etcdrs_client_new(urls.data, urls.len, 10000, &anonymous, &err));
  OK(etcdrs_client_new_auth(urls.data, urls.len, 10000, NULL, 0, NULL, 0, NULL, 0, false,
                            S("root"), S("nope"), &wrong, &err));
  FAILS(ETCDRS_CODE_INVALID_UTF8,
        etcdrs_client_new_auth(urls.data, urls.len, 10000, NULL, 0, NULL, 0, NULL, 0, false,
                               S("\xff"), NULL, 0, &wrong, &err));
  etcdrs_v3_response *r = NULL;
  OK(etcdrs_client_v3_put(root, S("/guarded"), S("v"), NULL, &r, &err));
  etcdrs_v3_response_free(r);
  V3_FAILS(ETCDRS_GRPC_INVALID_ARGUMENT, "etcdserver: user name is empty",
           etcdrs_client_v3_range(anonymous, S("/guarded"), NULL, 0, NULL, &r, &err));
  V3_FAILS(ETCDRS_GRPC_INVALID_ARGUMENT,
           "etcdserver: authentication failed, invalid user ID or password",
           etcdrs_client_v3_range(wrong, S("/guarded"), NULL, 0, NULL, &r, &err));
  OK(etcdrs_client_v3_range(root, S("/guarded"), NULL, 0, NULL, &r, &err));
  CHECK(etcdrs_v3_response_count(r) == 1);
  etcdrs_v3_response_free(r);
  /* The member's own client is not a user: it still may. */
  OK(etcdrs_client_v3_range(local, S("/guarded"), NULL, 0, NULL, &r, &err));
  etcdrs_v3_response_free(r);
  etcdrs_client_free(local);
  etcdrs_client_free(root);
  etcdrs_client_free(anonymous);
  etcdrs_client_free(wrong);
  OK(etcdrs_node_stop(node, &err));
  etcdrs_node_free(node);
}

/* ---------------------------------------------------------------- a cluster in-process */

static void test_three_members_in_one_process(const char *dir, char **ports) {
  char initial[512] = "";
  for (int i = 0; i < 3; i++) {
    char part[96];
    snprintf(part, sizeof part, "%sc%d=http://127.0.0.1:%s", i ? "," : "", i, ports[i]);
    strcat(initial, part);
  }
  etcdrs_node *nodes[3];
  for (int i = 0; i < 3; i++) {
    char name[8], data[512], peer[64];
    snprintf(name, sizeof name, "c%d", i);
    snprintf(data, sizeof data, "%s/%s", dir, name);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%s", ports[i]);
    etcdrs_config *cfg = NULL;
    OK(etcdrs_config_new(name, strlen(name), data, strlen(data), &cfg, &err));
    OK(etcdrs_config_set(cfg, S("listen-peer-urls"), peer, strlen(peer), &err));
    OK(etcdrs_config_set(cfg, S("initial-advertise-peer-urls"), peer, strlen(peer), &err));
    OK(etcdrs_config_set(cfg, S("initial-cluster"), initial, strlen(initial), &err));
    OK(etcdrs_config_set(cfg, S("initial-cluster-token"), S("c-abi-test"), &err));
    OK(etcdrs_node_start(cfg, &nodes[i], &err));
    etcdrs_config_free(cfg);
  }
  for (int i = 0; i < 3; i++) {
    OK(etcdrs_node_wait_ready(nodes[i], 30000, &err));
  }
  etcdrs_client *c0 = NULL;
  OK(etcdrs_node_client(nodes[0], &c0, &err));
  etcdrs_response *r = NULL;
  OK(etcdrs_client_set(c0, S("/cluster"), S("from c0"), ETCDRS_NO_TTL, &r, &err));
  uint64_t written = etcdrs_response_etcd_index(r);
  etcdrs_response_free(r);
  for (int i = 0; i < 3; i++) {
    etcdrs_client *c = NULL;
    OK(etcdrs_node_client(nodes[i], &c, &err));
    OK(etcdrs_client_get(c, S("/cluster"), false, false, true, &r, &err));
    check_node(etcdrs_response_node(r), "/cluster", "from c0");
    CHECK(etcdrs_response_etcd_index(r) == written);
    etcdrs_response_free(r);
    char *members = NULL;
    OK(etcdrs_client_members(c, &members, &err));
    CHECK(contains(members, "\"name\":\"c0\"") && contains(members, "\"name\":\"c2\""));
    etcdrs_string_free(members);
    etcdrs_client_free(c);
  }
  etcdrs_client_free(c0);
  for (int i = 0; i < 3; i++) {
    etcdrs_node_free(nodes[i]);
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s <scratch dir> <port> <port> <port>\n", argv[0]);
    return 2;
  }
  test_errors_without_a_member();
  test_a_member_in_process(argv[1]);
  test_a_watch_polled_while_others_write_and_cancel(argv[1]);
  test_v3_in_process_and_over_grpc(argv[1]);
  test_https_needs_tls_material(argv[1]);
  test_auth_needs_a_user(argv[1]);
  test_three_members_in_one_process(argv[1], argv + 2);
  printf("ok: %d checks\n", checks);
  return 0;
}
