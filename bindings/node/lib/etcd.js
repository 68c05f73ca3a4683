'use strict';
// node-etcd 7's API (`new Etcd(hosts, options)`, callbacks `(err, body, headers)`) over the
// etcdrs client, so code written for node-etcd runs with `require('etcdrs').Etcd`.
// Requests are etcd's keys API with node-etcd's options as its fields; errors are
// node-etcd's: an Error with etcd's message, `errorCode` and `error` (etcd's JSON body),
// or 'All servers returned error' with `errors` when no member answered.

const { EventEmitter } = require('node:events');
const native = require('./native');
const { EtcdError, call, fromNative } = require('./errors');
const { Client, fields, keyResult } = require('./client');

/** node-etcd options that are not etcd fields. */
const CLIENT_ONLY = new Set(['maxRetries', 'synchronous', 'timeout']);

function keyPath(key) {
  return `/${String(key).replace(/^\//, '')}`;
}

/** node-etcd's host list: a list, each with a protocol, no trailing slash. */
function cleanHostList(hosts) {
  const list = Array.isArray(hosts) ? hosts : [hosts];
  return list.map((host) => {
    const url = host.indexOf('http') === -1 ? `http://${host}` : host;
    return new URL(url).href.replace(/\/$/, '');
  });
}

function argParser(options, callback) {
  if (typeof options === 'function') return [{}, options];
  return [options || {}, callback];
}

/** The headers etcd sends with a keys-API answer. */
function keyHeaders(answer) {
  return {
    'content-type': 'application/json',
    'x-etcd-index': String(answer.etcdIndex),
    'x-raft-index': String(answer.raftIndex),
    'x-raft-term': String(answer.raftTerm),
  };
}

/** The error node-etcd hands its callback for what a call threw. */
function nodeEtcdError(err) {
  if (!(err instanceof EtcdError)) return [err, {}];
  if (err.errorCode < 1000) {
    // etcd answered with an error body.
    err.error = err.toJSON();
    return [err, { 'content-type': 'application/json', 'x-etcd-index': String(err.index) }];
  }
  // No member answered (node-etcd's multi-server error).
  const all = new Error('All servers returned error');
  all.errors = [{ server: null, httperror: err, timestamp: new Date() }];
  all.retries = 0;
  return [all, {}];
}

/** What node-etcd's calls return: a token that aborts the request. */
class CancellationToken {
  constructor(onAbort) {
    this.aborted = false;
    this._onAbort = onAbort;
  }

  isAborted() {
    return this.aborted;
  }

  abort() {
    this.aborted = true;
    if (this._onAbort) this._onAbort();
  }

  cancel() {
    this.abort();
  }

  wasAborted() {
    return this.isAborted();
  }
}

class Etcd {
  /**
   * A client of `hosts` ('host:port', a URL, or a list of them; default
   * '127.0.0.1:2379'). `options.timeout` (ms) bounds each request. `hosts` may also be a
   * `Client` (e.g. `node.client()` of an in-process member).
   */
  constructor(hosts = '127.0.0.1:2379', options = {}) {
    this.options = options;
    if (hosts instanceof Client) {
      this.hosts = [];
      this._client = hosts;
    } else {
      this.hosts = cleanHostList(hosts);
      this._client = new Client({ endpoints: this.hosts, timeout: options.timeout });
    }
    this.watcher = (key, index = null, opts = {}) => new Watcher(this, key, index, opts);
  }

  /** A keys-API request, answered through `callback`; a token to abort it. A watch
   * (`wait`) is a native watch, so aborting it ends the wait on the member too. */
  _keys(method, key, value, options, callback) {
    const form = {};
    for (const [name, v] of Object.entries(options)) if (!CLIENT_ONLY.has(name)) form[name] = v;
    if (value !== null && value !== undefined) form.value = value;
    const client = this._client._native;
    const path = keyPath(key);
    if (options.synchronous === true) {
      try {
        const answer = client.requestSync(method, path, fields(form), this.options.timeout);
        return { err: null, body: keyResult(answer), headers: keyHeaders(answer) };
      } catch (e) {
        const [err, headers] = nodeEtcdError(fromNative(e));
        return { err, body: '', headers };
      }
    }
    const wait = method === 'GET' && String(form.wait) === 'true';
    let pending;
    let watch = null;
    if (wait) {
      pending = call(() => {
        watch = client.watch(path, Number(form.waitIndex || 0), String(form.recursive) === 'true');
        return watch.next();
      }).finally(() => watch && watch.cancel());
    } else {
      pending = call(() => client.request(method, path, fields(form), this.options.timeout));
    }
    const token = new CancellationToken(() => watch && watch.cancel());
    pending.then(
      (answer) => {
        if (token.aborted || !callback) return;
        if (answer === null) return; // a cancelled watch
        callback(null, keyResult(answer), keyHeaders(answer));
      },
      (e) => {
        if (token.aborted || !callback) return;
        const [err, headers] = nodeEtcdError(e);
        callback(err, '', headers);
      },
    );
    return token;
  }

  /** A cluster fact (JSON from the native client), answered through `callback`. */
  _info(what, transform, callback) {
    const token = new CancellationToken();
    call(() => this._client._native.info(what)).then(
      (text) => {
        if (!token.aborted && callback) callback(null, transform(JSON.parse(text)), {});
      },
      (e) => {
        if (!token.aborted && callback) callback(nodeEtcdError(e)[0], '', {});
      },
    );
    return token;
  }

  set(key, value, options, callback) {
    [options, callback] = argParser(options, callback);
    return this._keys('PUT', key, value, options, callback);
  }

  setSync(key, value, options = {}) {
    return this.set(key, value, { ...options, synchronous: true });
  }

  get(key, options, callback) {
    [options, callback] = argParser(options, callback);
    return this._keys('GET', key, null, options, callback);
  }

  getSync(key, options = {}) {
    return this.get(key, { ...options, synchronous: true });
  }

  create(dir, value, options, callback) {
    [options, callback] = argParser(options, callback);
    return this._keys('POST', dir, value, options, callback);
  }

  post(dir, value, options, callback) {
    return this.create(dir, value, options, callback);
  }

  del(key, options, callback) {
    [options, callback] = argParser(options, callback);
    return this._keys('DELETE', key, null, options, callback);
  }

  delete(key, options, callback) {
    return this.del(key, options, callback);
  }

  delSync(key, options = {}) {
    return this.del(key, { ...options, synchronous: true });
  }

  mkdir(dir, options, callback) {
    [options, callback] = argParser(options, callback);
    return this.set(dir, null, { ...options, dir: true }, callback);
  }

  mkdirSync(dir, options = {}) {
    return this.mkdir(dir, { ...options, synchronous: true });
  }

  rmdir(dir, options, callback) {
    [options, callback] = argParser(options, callback);
    return this.del(dir, { ...options, dir: true }, callback);
  }

  rmdirSync(dir, options = {}) {
    return this.rmdir(dir, { ...options, synchronous: true });
  }

  compareAndSwap(key, value, oldvalue, options, callback) {
    [options, callback] = argParser(options, callback);
    return this.set(key, value, { ...options, prevValue: oldvalue }, callback);
  }

  testAndSet(key, value, oldvalue, options, callback) {
    return this.compareAndSwap(key, value, oldvalue, options, callback);
  }

  compareAndDelete(key, oldvalue, options, callback) {
    [options, callback] = argParser(options, callback);
    return this.del(key, { ...options, prevValue: oldvalue }, callback);
  }

  testAndDelete(key, oldvalue, options, callback) {
    return this.compareAndDelete(key, oldvalue, options, callback);
  }

  /**
   * node-etcd's raw request: `path` relative to the server ('v2/keys/...', 'v2/stats/
   * leader', 'v2/stats/self', 'v2/stats/store', 'v2/members', 'v2/machines', 'version').
   * Other paths answer an error: etcdrs does not forward arbitrary HTTP.
   */
  raw(method, path, value, options, callback) {
    [options, callback] = argParser(options, callback);
    const p = String(path).replace(/^\//, '');
    if (p === 'v2/keys' || p.startsWith('v2/keys/')) {
      return this._keys(method, p.slice('v2/keys'.length) || '/', value, options, callback);
    }
    const facts = {
      'v2/stats/leader': ['stats/leader', (x) => x],
      'v2/stats/self': ['stats/self', (x) => x],
      'v2/stats/store': ['stats/store', (x) => x],
      'v2/members': ['members', (members) => ({ members })],
      'v2/machines': ['machines', (x) => x],
      version: ['version', (x) => x],
    };
    if (method === 'GET' && facts[p]) return this._info(facts[p][0], facts[p][1], callback);
    const token = new CancellationToken();
    const err = new Error(`etcdrs: raw serves the keys API, stats, members, machines and version, not ${method} ${path}`);
    process.nextTick(() => callback && callback(err, '', {}));
    return token;
  }

  watch(key, options, callback) {
    [options, callback] = argParser(options, callback);
    return this.get(key, { ...options, wait: true }, callback);
  }

  watchIndex(key, index, options, callback) {
    [options, callback] = argParser(options, callback);
    return this.watch(key, { ...options, waitIndex: index }, callback);
  }

  /** The client URLs of the members. (node-etcd asks etcd 0.4's /v2/keys/_etcd/machines,
   * which etcd 3.4 answers with errorCode 100; this answers what /v2/machines lists.) */
  machines(callback) {
    return this._info('machines', (x) => x, callback);
  }

  getHosts() {
    return [...this.hosts];
  }

  /** The leader member. (node-etcd asks etcd 0.4's /v2/leader, which etcd 3.4 answers
   * with a 404 page; this answers the leader as /v2/members/leader does.) */
  leader(callback) {
    return this._info('leader', (x) => x, callback);
  }

  leaderStats(callback) {
    return this._info('stats/leader', (x) => x, callback);
  }

  selfStats(callback) {
    return this._info('stats/self', (x) => x, callback);
  }

  version(callback) {
    return this._info('version', (x) => x, callback);
  }
}

/**
 * node-etcd's watcher: an EventEmitter that watches `key` from `index` and emits 'change'
 * and the action's name ('set', 'delete', 'expire', 'compareAndSwap', ...) for every
 * change; 'resync' when the index left etcd's history (it goes on from etcd's index);
 * 'reconnect' (with a back-off) when no member answered; 'error' on an answer without a
 * node; 'stop' once stopped.
 */
class Watcher extends EventEmitter {
  constructor(etcd, key, index = null, options = {}) {
    super();
    this.etcd = etcd;
    this.key = key;
    this.index = index;
    this.options = options;
    this.stopped = false;
    this.retryAttempts = 0;
    this._timer = null;
    this._watch();
  }

  stop() {
    this.stopped = true;
    if (this._timer) clearTimeout(this._timer);
    if (this.request) this.request.abort();
    this.emit('stop', `Watcher for '${this.key}' aborted.`);
  }

  _watch() {
    if (this.stopped) return;
    const handler = (err, val, headers) => this._respHandler(err, val, headers);
    this.request =
      this.index === null
        ? this.etcd.watch(this.key, this.options, handler)
        : this.etcd.watchIndex(this.key, this.index, this.options, handler);
  }

  _respHandler(err, val, headers) {
    if (this.stopped) return;
    if (err && err.errorCode === 401 && err.error && err.error.index !== undefined) {
      this.index = err.error.index;
      this.retryAttempts = 0;
      this.emit('resync', err);
      this._watch();
    } else if (err) {
      const error = new Error('Connection error, reconnecting.');
      error.error = err;
      error.reconnectCount = this.retryAttempts;
      this.emit('reconnect', error);
      this._retry();
    } else if (val && val.node && val.node.modifiedIndex !== undefined) {
      this.retryAttempts = 0;
      this.index = val.node.modifiedIndex + 1;
      this.emit('change', val, headers);
      if (val.action) this.emit(val.action, val, headers);
      this._watch();
    } else {
      const error = new Error('Received unexpected response');
      error.response = val;
      this.emit('error', error);
      this._retry();
    }
  }

  _retry() {
    const timeout = 2 ** this.retryAttempts * 300 + Math.round(Math.random() * 1000);
    this._timer = setTimeout(() => this._watch(), timeout);
    this.retryAttempts += 1;
  }
}

Etcd.Watcher = Watcher;
Etcd.CancellationToken = CancellationToken;
module.exports = { Etcd, Watcher, CancellationToken, cleanHostList };
