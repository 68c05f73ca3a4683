'use strict';
// A member inside this process. Options are etcd's flags in camelCase; what is not given
// is the core's default (ephemeral ports on 127.0.0.1, a single-member cluster).

const native = require('./native');
const { call, callSync } = require('./errors');
const { Client } = require('./client');

/** Members still running; stopped when the process exits. */
const running = new Set();
process.on('exit', () => {
  for (const node of running) node._native.stopSync();
});

/** etcd's flag name for an option: listenClientUrls → listen-client-urls. */
function flagName(option) {
  return option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** etcd's command-line text for an option's value: lists joined with commas, and an
 * initialCluster given as { name: peerUrl } as name=url pairs. */
function flagText(option, value) {
  if (Array.isArray(value)) return value.join(',');
  if (option === 'initialCluster' && typeof value === 'object') {
    return Object.entries(value)
      .map(([name, url]) => `${name}=${url}`)
      .join(',');
  }
  return String(value);
}

class Node {
  /**
   * Start member `name` (default 'default') with its data in `dataDir` (default
   * `<name>.etcd`, as etcd). A bad option throws here; `await node.ready()` waits until
   * the member serves.
   */
  constructor(options = {}) {
    const { name = 'default', dataDir = `${name}.etcd`, ...rest } = options;
    const flags = {};
    for (const [option, value] of Object.entries(rest)) {
      if (value !== undefined && value !== null) flags[flagName(option)] = flagText(option, value);
    }
    this._native = callSync(() => new native.NativeNode(name, dataDir, flags));
    this._info = null;
    this._started = call(() => this._native.start()).then((info) => {
      this._info = info;
      running.add(this);
      return info;
    });
    // A failed start is reported by ready(); it must not end the process as unhandled.
    this._started.catch(() => {});
  }

  /** Wait until the member has started and joined its cluster (`timeout` ms at most). */
  async ready({ timeout = 60000 } = {}) {
    await this._started;
    if (!(await call(() => this._native.waitReady(timeout)))) {
      throw new Error(`etcdrs: member ${this._info.name} did not join its cluster within ${timeout} ms`);
    }
    return this;
  }

  _infoOrThrow() {
    if (!this._info) throw new Error('etcdrs: the member has not started yet (await node.ready())');
    return this._info;
  }

  get name() {
    return this._infoOrThrow().name;
  }

  /** The member's id, as etcd spells it (hex). */
  get memberId() {
    return this._infoOrThrow().memberId;
  }

  /** The URLs the client API listens on (actual ports). */
  get clientUrls() {
    return this._infoOrThrow().clientUrls;
  }

  /** The URLs the peer API listens on (actual ports). */
  get peerUrls() {
    return this._infoOrThrow().peerUrls;
  }

  /** Why the member failed and serves no more, or null while it runs. */
  get failure() {
    return this._native.failure();
  }

  /** A client of this member in this process (no HTTP). */
  client() {
    this._infoOrThrow();
    return Client._of(callSync(() => this._native.client()));
  }

  /** Stop the member; acknowledged writes are already on disk. Idempotent. */
  async close() {
    await this._started.catch(() => {});
    await call(() => this._native.stop());
    running.delete(this);
  }
}

module.exports = { Node };
