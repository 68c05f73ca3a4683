'use strict';
// The Promise client: the same calls over HTTP (with failover) or to an in-process member.
// Keys-API calls hand etcd's form fields to the core, which parses them as the HTTP API
// does; results are etcd's JSON plus the index headers.

const native = require('./native');
const { call, callSync } = require('./errors');

/** etcd's form fields from options: set ones only, as text. */
function fields(options) {
  const out = {};
  for (const [name, v] of Object.entries(options)) {
    if (v !== undefined && v !== null) out[name] = String(v);
  }
  return out;
}

/** A keys-API answer as etcd's JSON (action, node, prevNode) plus the index headers. */
function keyResult(answer) {
  const result = JSON.parse(answer.event);
  result.etcdIndex = answer.etcdIndex;
  result.raftIndex = answer.raftIndex;
  result.raftTerm = answer.raftTerm;
  return result;
}

class Client {
  /**
   * A client of the cluster at `endpoints` over HTTP; `timeout` (ms) bounds every call but
   * watches and lock or leader waits. `tls` ({caFile, certFile, keyFile,
   * insecureSkipVerify}) reaches `https://` endpoints. `auth` ({user, pass}, node-etcd's
   * option) is sent as HTTP Basic credentials to members with auth enabled. `node.client()`
   * gives one bound to an in-process member instead.
   */
  constructor({ endpoints = ['http://127.0.0.1:2379'], timeout, tls = {}, auth } = {}) {
    const list = typeof endpoints === 'string' ? endpoints.split(',') : endpoints;
    this._native = callSync(() => native.NativeClient.http(list, timeout,
      tls.caFile, tls.certFile, tls.keyFile, tls.insecureSkipVerify,
      auth ? auth.user : undefined, auth ? auth.pass : undefined));
    this._timeout = timeout;
  }

  /** A Client over a native client (an in-process member's). */
  static _of(nativeClient) {
    const client = Object.create(Client.prototype);
    client._native = nativeClient;
    client._timeout = undefined;
    return client;
  }

  async _request(method, key, options) {
    return keyResult(await call(() => this._native.request(method, key, fields(options), this._timeout)));
  }

  /** Read a key or a directory (`recursive`, `sorted`; `quorum` reads through raft). */
  get(key, { recursive, sorted, quorum } = {}) {
    return this._request('GET', key, { recursive, sorted, quorum });
  }

  /** Set a key's value, creating or replacing it; `prevValue`, `prevIndex` and
   * `prevExist` make it conditional. */
  set(key, value, { ttl, prevValue, prevIndex, prevExist } = {}) {
    return this._request('PUT', key, { value, ttl, prevValue, prevIndex, prevExist });
  }

  /** Create a key that must not exist yet. */
  create(key, value, { ttl } = {}) {
    return this._request('PUT', key, { value, ttl, prevExist: false });
  }

  /** Create a key with a unique, increasing name under directory `dir`. */
  createInOrder(dir, value, { ttl } = {}) {
    return this._request('POST', dir, { value, ttl });
  }

  /** Update a key that must exist. */
  update(key, value, { ttl } = {}) {
    return this._request('PUT', key, { value, ttl, prevExist: true });
  }

  /** Make a directory (or, with `prevExist: true`, update one's TTL). */
  mkdir(key, { ttl, prevExist } = {}) {
    return this._request('PUT', key, { dir: true, ttl, prevExist });
  }

  /** Remove a directory (`recursive` for one that is not empty). */
  rmdir(key, { recursive } = {}) {
    return this._request('DELETE', key, { dir: true, recursive });
  }

  /** Delete a key (`dir`, `recursive` for directories). */
  delete(key, { recursive, dir } = {}) {
    return this._request('DELETE', key, { recursive, dir });
  }

  /** Set `key` to `value` only if its value is `prevValue` and/or its index `prevIndex`. */
  compareAndSwap(key, value, { prevValue, prevIndex, ttl } = {}) {
    return this._request('PUT', key, { value, prevValue, prevIndex, ttl });
  }

  /** Delete `key` only if its value is `prevValue` and/or its index `prevIndex`. */
  compareAndDelete(key, { prevValue, prevIndex } = {}) {
    return this._request('DELETE', key, { prevValue, prevIndex });
  }

  /** Give an existing key a new TTL without changing its value (no watch fires). */
  refresh(key, ttl) {
    return this._request('PUT', key, { ttl, refresh: true, prevExist: true });
  }

  /**
   * Every change of `key` (and below it, when `recursive`) as an async iterator, from
   * `waitIndex` on (default: the changes after the first iteration asks). No change is
   * missed between iterations: each wait starts after the last event seen. `break` or
   * `signal` (an AbortSignal) end it; an error (e.g. 401, the index left the history)
   * is thrown from the loop.
   */
  watch(key, { waitIndex = 0, recursive = false, signal } = {}) {
    const watch = callSync(() => this._native.watch(key, waitIndex, recursive));
    const end = () => watch.cancel();
    if (signal) {
      if (signal.aborted) end();
      else signal.addEventListener('abort', end, { once: true });
    }
    const done = () => {
      end();
      if (signal) signal.removeEventListener('abort', end);
      return { done: true, value: undefined };
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        let answer;
        try {
          answer = await call(() => watch.next());
        } catch (e) {
          done();
          throw e;
        }
        return answer === null ? done() : { done: false, value: keyResult(answer) };
      },
      async return() {
        return done();
      },
      /** End the watch from anywhere: a waiting iteration ends at once. */
      cancel: end,
    };
  }

  /** The client URLs of the cluster's members. */
  async machines() {
    return JSON.parse(await call(() => this._native.info('machines')));
  }

  /** The leader member: { id, name, peerURLs, clientURLs }. */
  async leader() {
    return JSON.parse(await call(() => this._native.info('leader')));
  }

  /** The members, as /v2/members lists them. */
  async members() {
    return JSON.parse(await call(() => this._native.info('members')));
  }

  /** /v2/stats/<kind>: 'self', 'store' or 'leader'. */
  async stats(kind) {
    return JSON.parse(await call(() => this._native.info(`stats/${kind}`)));
  }

  /** { etcdserver, etcdcluster }, as GET /version answers. */
  async version() {
    return JSON.parse(await call(() => this._native.info('version')));
  }

  /** Acquire lock `name` with a TTL (waiting for it, `timeout` seconds at most); answers
   * the holder's index. */
  lockAcquire(name, { ttl, value, timeout } = {}) {
    return call(() => this._native.lockAcquire(name, ttl, value, timeout));
  }

  /** The lock's holder: its 'value' (default) or 'index'. */
  lockRetrieve(name, field = 'value') {
    return call(() => this._native.lockRetrieve(name, field));
  }

  /** Renew the lock held under `index` or `value` for `ttl` more seconds. */
  lockRenew(name, { ttl, index, value } = {}) {
    return call(() => this._native.lockRenew(name, ttl, index, value));
  }

  /** Release the lock held under `index` or `value`. */
  lockRelease(name, { index, value } = {}) {
    return call(() => this._native.lockRelease(name, index, value));
  }

  /** Campaign as `leader` of `name` with a TTL (waiting `timeout` seconds at most);
   * answers the leadership's index. */
  setLeader(name, leader, { ttl, timeout } = {}) {
    return call(() => this._native.setLeader(name, leader, ttl, timeout));
  }

  /** The current leader of `name`. */
  getLeader(name) {
    return call(() => this._native.getLeader(name));
  }

  /** Step down as `leader` of `name`. */
  deleteLeader(name, leader) {
    return call(() => this._native.deleteLeader(name, leader));
  }
}

module.exports = { Client, fields, keyResult };
