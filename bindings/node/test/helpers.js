'use strict';
// What the tests share: temporary dirs, free ports, an etcdrs member process and real etcd
// 3.4 (the reference), each bounded in time.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

function tmpDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `etcdrs-node-${name}-`));
}

/** A port that takes a listener now; below the kernel's ephemeral range, where a port
 * released here is not handed to another test's outgoing connection. */
async function freePorts(n) {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
  } catch {}
  const span = Math.max(1, Math.min(10000, low - 1025));
  const ports = new Set();
  for (let tries = 0; ports.size < n && tries < 10000; tries += 1) {
    const port = low - 1 - Math.floor(Math.random() * span);
    if (ports.has(port)) continue;
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) ports.add(port);
  }
  if (ports.size < n) throw new Error(`no ${n} free ports below ${low}`);
  return [...ports];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `f` until it answers truthy, for at most `ms`. */
async function eventually(f, ms = 10000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function etcdrsBin() {
  const bin = process.env.ETCDRS_BIN || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'etcdrs');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: cargo build --bin etcdrs (scripts/test.sh does)`);
  return bin;
}

/** An etcdrs member in its own process on ephemeral ports: { url, stop() }. */
async function memberProcess() {
  const dir = tmpDir('member');
  const proc = spawn(
    etcdrsBin(),
    ['--data-dir', dir, '--listen-client-urls', 'http://127.0.0.1:0', '--listen-peer-urls', 'http://127.0.0.1:0'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } },
  );
  let url = null;
  let log = '';
  proc.stderr.on('data', (chunk) => {
    log += chunk;
    const m = !url && /member started.*?"(http:\/\/[^"]+)"/.exec(log);
    if (m) url = m[1];
  });
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
    }
  };
  try {
    await eventually(() => url || proc.exitCode !== null, 20000, 'the etcdrs member to start');
  } catch (e) {
    await stop();
    throw e;
  }
  if (!url) throw new Error(`the etcdrs member exited: ${log}`);
  return { url, stop };
}

/** Real etcd 3.4 with the v2 API (--enable-v2) on ports of its own: { url, stop() }. */
async function etcdProcess() {
  const [client, peer] = await freePorts(2);
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const proc = spawn(
    'etcd',
    ['--enable-v2=true', '--name', 'default', '--data-dir', tmpDir('etcd'),
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `default=${peerUrl}`],
    { stdio: 'ignore' },
  );
  let spawnError = null;
  proc.once('error', (e) => {
    spawnError = e;
  });
  const stop = async () => {
    if (proc.exitCode === null && !spawnError) {
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
    }
  };
  try {
    await eventually(async () => {
      if (spawnError) throw new Error(`real etcd is needed (apt-get install etcd-server): ${spawnError.message}`);
      const r = await fetch(`${url}/v2/keys/`);
      return r.status === 200;
    }, 20000, 'etcd to start');
  } catch (e) {
    await stop();
    throw spawnError ? new Error(`real etcd is needed (apt-get install etcd-server): ${spawnError.message}`) : e;
  }
  return { url, stop };
}

module.exports = { tmpDir, freePorts, sleep, eventually, memberProcess, etcdProcess };
