'use strict';
// node-etcd's documented behaviour, run three ways: node-etcd 7 itself against real etcd
// 3.4 (so the expectations are etcd's), etcdrs's Etcd against an etcdrs member process
// (HTTP), and etcdrs's Etcd against a member inside this process.

const test = require('node:test');
const assert = require('node:assert/strict');
const NodeEtcd = require('node-etcd');
const { Etcd, Node } = require('..');
const { tmpDir, sleep, memberProcess, etcdProcess } = require('./helpers');

/** A node-etcd call as a Promise of [err, body, headers]. */
function cb(start) {
  return new Promise((resolve) => start((err, body, headers) => resolve([err, body, headers])));
}

/** The first `event` the emitter emits, within `ms`. */
function once(emitter, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

const targets = [
  {
    name: 'node-etcd 7 → etcd 3.4',
    server: 'etcd',
    async start() {
      const etcd = await etcdProcess();
      return { client: new NodeEtcd(etcd.url.replace('http://', '')), url: etcd.url, stop: etcd.stop };
    },
  },
  {
    name: 'etcdrs Etcd → etcdrs member process',
    server: 'etcdrs',
    async start() {
      const m = await memberProcess();
      return { client: new Etcd(m.url.replace('http://', '')), url: m.url, stop: m.stop };
    },
  },
  {
    name: 'etcdrs Etcd → in-process member',
    server: 'etcdrs',
    async start() {
      const node = new Node({ name: 'compat', dataDir: tmpDir('compat') });
      await node.ready();
      return { client: new Etcd(node.client()), url: null, stop: () => node.close() };
    },
  },
];

for (const target of targets) {
  test(`node-etcd API: ${target.name}`, async (t) => {
    const server = await target.start();
    const etcd = server.client;
    t.after(() => server.stop());

    await t.test('set and get answer (err, body, headers) with etcd index headers', async () => {
      const [err, body, headers] = await cb((f) => etcd.set('/k', 'v', f));
      assert.equal(err, null);
      assert.equal(body.action, 'set');
      assert.deepEqual([body.node.key, body.node.value], ['/k', 'v']);
      assert.match(headers['x-etcd-index'], /^\d+$/);
      assert.equal(Number(headers['x-etcd-index']), body.node.modifiedIndex);
      // Keys without a leading slash are the same keys.
      const [gerr, got] = await cb((f) => etcd.get('k', f));
      assert.equal(gerr, null);
      assert.equal(got.action, 'get');
      assert.equal(got.node.value, 'v');
      const [, withTtl] = await cb((f) => etcd.set('ttl', 'x', { ttl: 50 }, f));
      assert.equal(withTtl.node.ttl, 50);
      assert.equal(typeof withTtl.node.expiration, 'string');
    });

    await t.test('an etcd error is an Error with errorCode and etcd body', async () => {
      const [err, body, headers] = await cb((f) => etcd.get('/missing', f));
      assert.ok(err instanceof Error);
      assert.equal(err.message, 'Key not found');
      assert.equal(err.errorCode, 100);
      assert.deepEqual(Object.keys(err.error).sort(), ['cause', 'errorCode', 'index', 'message']);
      assert.equal(err.error.cause, '/missing');
      assert.equal(err.error.errorCode, 100);
      assert.equal(body, '');
      assert.equal(Number(headers['x-etcd-index']), err.error.index);
    });

    await t.test('compareAndSwap / testAndSet and compareAndDelete / testAndDelete', async () => {
      await cb((f) => etcd.set('/cas', 'one', f));
      const [e1, swapped] = await cb((f) => etcd.compareAndSwap('/cas', 'two', 'one', f));
      assert.equal(e1, null);
      assert.equal(swapped.action, 'compareAndSwap');
      assert.equal(swapped.prevNode.value, 'one');
      const [e2] = await cb((f) => etcd.testAndSet('/cas', 'three', 'one', f));
      assert.equal(e2.errorCode, 101);
      assert.equal(e2.error.cause, '[one != two]');
      const [e3] = await cb((f) => etcd.compareAndDelete('/cas', 'nope', f));
      assert.equal(e3.errorCode, 101);
      const [e4, deleted] = await cb((f) => etcd.testAndDelete('/cas', 'two', {}, f));
      assert.equal(e4, null);
      assert.equal(deleted.action, 'compareAndDelete');
    });

    await t.test('mkdir, create / post in order, get recursive, rmdir, del / delete', async () => {
      const [e1, dir] = await cb((f) => etcd.mkdir('/dir', f));
      assert.equal(e1, null);
      assert.equal(dir.node.dir, true);
      const [, a] = await cb((f) => etcd.create('/dir', 'first', f));
      const [, b] = await cb((f) => etcd.post('/dir', 'second', {}, f));
      assert.equal(a.action, 'create');
      assert.ok(a.node.key.startsWith('/dir/') && b.node.key > a.node.key);
      const [, list] = await cb((f) => etcd.get('/dir', { recursive: true, sorted: true }, f));
      assert.deepEqual(list.node.nodes.map((n) => n.value), ['first', 'second']);
      const [notEmpty] = await cb((f) => etcd.rmdir('/dir', f));
      assert.equal(notEmpty.errorCode, 108);
      const [e2, removed] = await cb((f) => etcd.rmdir('/dir', { recursive: true }, f));
      assert.equal(e2, null);
      assert.equal(removed.action, 'delete');
      await cb((f) => etcd.set('/gone', 'x', f));
      const [e3, del] = await cb((f) => etcd.del('/gone', f));
      assert.equal(e3, null);
      assert.equal(del.prevNode.value, 'x');
      const [e4] = await cb((f) => etcd.delete('/gone', f));
      assert.equal(e4.errorCode, 100);
    });

    await t.test('the *Sync calls answer { err, body, headers }', () => {
      const set = etcd.setSync('/sync', 'v');
      assert.equal(set.err, null);
      assert.equal(set.body.node.value, 'v');
      assert.match(set.headers['x-etcd-index'], /^\d+$/);
      assert.equal(etcd.getSync('/sync').body.node.value, 'v');
      const missing = etcd.getSync('/sync-missing');
      assert.equal(missing.err.errorCode, 100);
      assert.equal(missing.body, '');
      assert.equal(etcd.mkdirSync('/sdir').body.node.dir, true);
      assert.equal(etcd.rmdirSync('/sdir').body.action, 'delete');
      assert.equal(etcd.delSync('/sync').body.action, 'delete');
    });

    await t.test('watch and watchIndex answer the next change; abort stops one', async () => {
      const [, base] = await cb((f) => etcd.set('/w', 'start', f));
      const next = cb((f) => etcd.watch('/w', f));
      await sleep(100);
      await cb((f) => etcd.set('/w', 'changed', f));
      const [err, ev, headers] = await next;
      assert.equal(err, null);
      assert.equal(ev.action, 'set');
      assert.equal(ev.node.value, 'changed');
      assert.ok(headers['x-etcd-index']);
      // From history.
      const [, old] = await cb((f) => etcd.watchIndex('/w', base.node.modifiedIndex, f));
      assert.equal(old.node.value, 'start');
      // An aborted watch never calls back.
      let called = false;
      const token = etcd.watch('/w', () => {
        called = true;
      });
      token.abort();
      assert.equal(token.isAborted(), true);
      await cb((f) => etcd.set('/w', 'after abort', f));
      await sleep(300);
      assert.equal(called, false);
    });

    await t.test('watcher emits change and the action, and stop', async () => {
      const w = etcd.watcher('/watched', null, { recursive: true });
      try {
        await sleep(100);
        const changed = once(w, 'change');
        const set = once(w, 'set');
        await cb((f) => etcd.set('/watched/a', '1', f));
        const [ev, headers] = await changed;
        assert.equal(ev.node.key, '/watched/a');
        assert.ok(headers['x-etcd-index']);
        await set;
        const cas = once(w, 'compareAndSwap');
        await cb((f) => etcd.compareAndSwap('/watched/a', '2', '1', f));
        assert.equal((await cas)[0].node.value, '2');
        const del = once(w, 'delete');
        await cb((f) => etcd.del('/watched/a', f));
        assert.equal((await del)[0].prevNode.value, '2');
        const expire = once(w, 'expire', 15000);
        await cb((f) => etcd.set('/watched/ttl', 'x', { ttl: 1 }, f));
        assert.equal((await expire)[0].node.key, '/watched/ttl');
      } finally {
        const stopped = once(w, 'stop');
        w.stop();
        await stopped;
      }
      let after = 0;
      w.on('change', () => {
        after += 1;
      });
      await cb((f) => etcd.set('/watched/b', 'x', f));
      await sleep(200);
      assert.equal(after, 0);
    });

    await t.test('watcher resyncs when its index left the history', async () => {
      for (let i = 0; i < 1005; i += 1) await cb((f) => etcd.set('/churn', String(i), f));
      const w = etcd.watcher('/resync', 1);
      try {
        const [err] = await once(w, 'resync');
        assert.equal(err.errorCode, 401);
        assert.equal(typeof err.error.index, 'number');
        const change = once(w, 'change');
        await sleep(100);
        await cb((f) => etcd.set('/resync', 'now', f));
        assert.equal((await change)[0].node.value, 'now');
      } finally {
        w.stop();
      }
    });

    await t.test('stats, version, raw, hosts', async () => {
      const [e1, self] = await cb((f) => etcd.selfStats(f));
      assert.equal(e1, null);
      assert.equal(self.state, 'StateLeader');
      const [, leader] = await cb((f) => etcd.leaderStats(f));
      assert.equal(leader.leader, self.id);
      const [, version] = await cb((f) => etcd.version(f));
      assert.match(version.etcdserver, /^3\.4\./);
      await cb((f) => etcd.set('/raw', 'r', f));
      const [e2, raw] = await cb((f) => etcd.raw('GET', 'v2/keys/raw', null, {}, f));
      assert.equal(e2, null);
      assert.equal(raw.node.value, 'r');
      const [, rawPut] = await cb((f) => etcd.raw('PUT', 'v2/keys/raw2', 'v', {}, f));
      assert.equal(rawPut.node.value, 'v');
      const [, rawStats] = await cb((f) => etcd.raw('GET', 'v2/stats/self', null, {}, f));
      assert.equal(rawStats.id, self.id);
      if (server.url) assert.deepEqual(etcd.getHosts(), [server.url]);
    });

    await t.test('machines and leader', async () => {
      const [merr, machines] = await cb((f) => etcd.machines(f));
      const [lerr, leader] = await cb((f) => etcd.leader(f));
      if (target.server === 'etcd') {
        // node-etcd asks etcd 0.4's paths, which etcd 3.4 no longer has.
        assert.equal(merr.errorCode, 100);
        assert.equal(lerr, null);
        assert.match(String(leader), /404 page not found/);
      } else {
        // etcdrs answers what they meant: the client URLs and the leader member.
        assert.equal(merr, null);
        assert.ok(Array.isArray(machines) && machines.length === 1);
        assert.equal(lerr, null);
        assert.deepEqual(Object.keys(leader), ['id', 'name', 'peerURLs', 'clientURLs']);
      }
    });
  });
}

test('node-etcd API: a watcher reconnects when no member answers', async () => {
  for (const etcd of [new NodeEtcd('127.0.0.1:1'), new Etcd('127.0.0.1:1')]) {
    const w = etcd.watcher('/k', null, { maxRetries: 0 });
    try {
      const [error] = await once(w, 'reconnect');
      assert.equal(error.message, 'Connection error, reconnecting.');
      assert.equal(error.reconnectCount, 0);
      assert.equal(error.error.message, 'All servers returned error');
    } finally {
      w.stop();
    }
  }
});

