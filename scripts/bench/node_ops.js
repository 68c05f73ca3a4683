'use strict';
// Operations per second from Node, one client, one call at a time: set (distinct keys,
// 64-byte values) then get (the same keys). Run by scripts/bench/node.sh; prints one JSON
// line per client. A measurement, not a test.
const path = require('node:path');
const os = require('node:os');
const fs = require('node:fs');

const pkg = path.join(__dirname, '..', '..', 'bindings', 'node');
const { Node, Client, Etcd } = require(pkg);
const NodeEtcd = require(path.join(pkg, 'node_modules', 'node-etcd'));

const N = Number(process.env.OPS || 5000);
const VALUE = 'x'.repeat(64);

/** A node-etcd style call as a Promise. */
const cb = (start) =>
  new Promise((resolve, reject) => start((err, body) => (err ? reject(err) : resolve(body))));

async function measure(name, write, read) {
  const row = { client: name };
  for (const op of ['set', 'get']) {
    const lat = new Float64Array(N);
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i += 1) {
      const t = process.hrtime.bigint();
      if (op === 'set') await write(`/bench/k${i}`, VALUE);
      else await read(`/bench/k${i}`);
      lat[i] = Number(process.hrtime.bigint() - t) / 1000;
    }
    const took = Number(process.hrtime.bigint() - start) / 1e9;
    lat.sort();
    row[op] = {
      ops_per_s: Math.round(N / took),
      p50_us: Math.round(lat[Math.floor(N / 2)]),
      p99_us: Math.round(lat[Math.floor(N * 0.99)]),
    };
  }
  console.log(JSON.stringify(row));
}

async function main() {
  const [which, host] = process.argv.slice(2);
  if (which.endsWith('in-process')) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdrs-node-bench-'));
    const node = new Node({ name: 'bench', dataDir: path.join(dir, 'm') });
    await node.ready();
    if (which.startsWith('etcd-api')) {
      const etcd = new Etcd(node.client());
      await measure(which, (k, v) => cb((f) => etcd.set(k, v, f)), (k) => cb((f) => etcd.get(k, f)));
    } else {
      const c = node.client();
      await measure(which, (k, v) => c.set(k, v), (k) => c.get(k));
    }
    await node.close();
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  if (which.startsWith('node-etcd')) {
    const etcd = new NodeEtcd(host);
    await measure(which, (k, v) => cb((f) => etcd.set(k, v, f)), (k) => cb((f) => etcd.get(k, f)));
  } else {
    const c = new Client({ endpoints: [`http://${host}`] });
    await measure(which, (k, v) => c.set(k, v), (k) => c.get(k));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
