// The dashboard (/mod/dashboard) of a 3-member cluster of real etcdrs processes, loaded in
// Debian's chromium (driven by playwright-core): what it renders, that its graphs move
// after writes, that its keys browser finds keys (v2, hidden, v3), that updates do not
// move the layout, and a screenshot kept for people to look at.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BIN = process.env.ETCDRS_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOT_DIR || os.tmpdir();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Wait (bounded) until f() returns something truthy.
async function eventually(what, f, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${last})`);
}

/// A port free now, below the kernel's ephemeral range (a member binds it later).
async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port');
}

async function startCluster(dir) {
  const peers = [];
  while (peers.length < 3) {
    const p = await freePort();
    if (!peers.includes(p)) peers.push(p);
  }
  const initial = peers.map((p, i) => `m${i}=http://127.0.0.1:${p}`).join(',');
  const members = peers.map((p, i) => {
    const proc = spawn(BIN, [
      '--name', `m${i}`, '--data-dir', path.join(dir, `m${i}`),
      '--listen-client-urls', 'http://127.0.0.1:0',
      '--listen-peer-urls', `http://127.0.0.1:${p}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${p}`,
      '--initial-cluster', initial, '--initial-cluster-token', 'dashboard',
    ], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } });
    const m = { name: `m${i}`, proc, url: null, log: '' };
    proc.stderr.on('data', (chunk) => {
      m.log += chunk;
      const found = !m.url && /member started.*?"(http:\/\/[^"]+)"/.exec(m.log);
      if (found) m.url = found[1];
    });
    return m;
  });
  for (const m of members) {
    await eventually(`${m.name} starts`, () => m.url || m.proc.exitCode !== null && Promise.reject(new Error(m.log)));
  }
  for (const m of members) {
    await eventually(`${m.name} is healthy`, async () => (await fetch(`${m.url}/health`)).ok);
  }
  return members;
}

async function put(url, key, value) {
  const r = await fetch(`${url}/v2/keys${key}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ value }),
  });
  assert.ok(r.status === 200 || r.status === 201, `PUT ${key}: ${r.status}`);
}

test('the dashboard shows a 3-member cluster live and browses its keys', { timeout: 180000 }, async (t) => {
  assert.ok(BIN, 'ETCDRS_BIN names the etcdrs binary (scripts/test-browser.sh sets it)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdrs-dashboard-'));
  const members = await startCluster(dir);
  let browser;
  t.after(async () => {
    if (browser) await browser.close();
    for (const m of members) m.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const url = members[1].url;
  await put(url, '/dashboard/greeting', 'hello from etcdrs');
  await put(url, '/dashboard/_secret', 'hidden value');
  await put(url, '/services/web/1', '10.0.0.1:80');
  const gw = await fetch(`${url}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from('app/config').toString('base64'), value: Buffer.from('v3 value').toString('base64') }),
  });
  assert.equal(gw.status, 200);
  const leaderId = (await (await fetch(`${url}/v2/members/leader`)).json()).id;
  let leaderName;
  for (const m of members) {
    if ((await (await fetch(`${m.url}/v2/stats/self`)).json()).id === leaderId) leaderName = m.name;
  }
  assert.ok(leaderName, `no member has the leader's id ${leaderId}`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // A laptop screen.
  const page = await browser.newPage({ viewport: { width: 1366, height: 860 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  await page.goto(`${url}/mod/dashboard`);

  // Members: all three, one leader marked, all healthy.
  await page.waitForFunction(() => document.querySelectorAll('#members tr[data-member]').length === 3);
  const names = await page.$$eval('#members tr[data-member]', (rows) => rows.map((r) => r.dataset.member).sort());
  assert.deepEqual(names, ['m0', 'm1', 'm2']);
  await page.waitForFunction(() => document.querySelectorAll('#members .pill.ok').length === 4,
    null, { timeout: 15000 }); // three "healthy" and one "leader"
  const leaders = await page.$$eval('#members tr[data-leader="true"]', (rows) => rows.map((r) => [r.dataset.member, r.querySelector('.leader-mark').textContent]));
  assert.equal(leaders.length, 1);
  assert.equal(leaders[0][1], '★');
  assert.equal(leaders[0][0], leaderName);
  assert.equal(await page.textContent('#leader-name'), leaders[0][0]);

  // The followers' latency as the leader sees it.
  await page.waitForFunction(() => document.querySelectorAll('#followers tr[data-follower]').length === 2, null, { timeout: 15000 });

  // Let the graphs fill a little, then note the layout.
  await page.waitForFunction(() => Number(document.querySelector('[data-chart="requests"]').dataset.samples) >= 2);
  const layout = () => page.evaluate(() => ['#members-card', '#charts', '#followers-card', '#keys-card']
    .map((s) => { const r = document.querySelector(s).getBoundingClientRect(); return [s, Math.round(r.top), Math.round(r.height)]; }));
  const before = await layout();
  const indexBefore = Number(await page.getAttribute('[data-chart="raft"] [data-series="raft index"]', 'data-last'));

  // Writes move the request graph and the raft index.
  for (let i = 0; i < 40; i++) await put(url, `/load/k${i}`, `v${i}`);
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-chart="requests"] [data-series="sets"]');
    return s && Number(s.dataset.peak) > 0;
  }, null, { timeout: 15000 });
  await page.waitForFunction((was) => Number(document.querySelector('[data-chart="raft"] [data-series="raft index"]').dataset.last) >= was + 40,
    indexBefore, { timeout: 15000 });
  const points = await page.getAttribute('[data-chart="requests"] polyline', 'points');
  assert.ok(points.split(' ').length >= 3, points);

  // Nothing moved while the numbers changed.
  assert.deepEqual(await layout(), before);

  // The v2 keys browser: into a directory, a key's value; hidden keys only when asked.
  await page.click('[data-key="/dashboard"]');
  await page.waitForSelector('[data-key="/dashboard/greeting"]');
  assert.equal(await page.$('[data-key="/dashboard/_secret"]'), null);
  await page.click('[data-key="/dashboard/greeting"]');
  await page.waitForFunction(() => document.querySelector('#v2-value')?.textContent === 'hello from etcdrs');
  await page.check('#show-hidden');
  await page.waitForSelector('[data-key="/dashboard/_secret"].hidden-key');
  await page.click('[data-key="/dashboard/_secret"]');
  await page.waitForFunction(() => document.querySelector('#v2-value')?.textContent === 'hidden value');

  // The v3 keys browser.
  await page.click('#tab-v3');
  await page.fill('#v3-prefix', 'app/');
  await page.click('#v3-search');
  await page.click('[data-v3-key="app/config"]');
  await page.waitForFunction(() => document.querySelector('#v3-value')?.textContent === 'v3 value');
  assert.match(await page.textContent('#v3-details'), /mod_revision/);

  // For the picture in docs/ (DASHBOARD_SOAK_SECONDS=45): graphs with some history.
  const soak = Number(process.env.DASHBOARD_SOAK_SECONDS || 0);
  for (let end = Date.now() + soak * 1000, i = 0; Date.now() < end; i++) {
    await put(members[i % 3].url, `/load/s${i % 500}`, `${i}`);
    await sleep(i % 40 < 20 ? 15 : 60);
  }
  // Back on the v2 tab for the picture.
  await page.click('#tab-v2');
  await page.click('[data-key="/dashboard/greeting"]');
  await page.waitForFunction(() => document.querySelector('#v2-value')?.textContent === 'hello from etcdrs');
  fs.mkdirSync(SHOTS, { recursive: true });
  const shot = path.join(SHOTS, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 20000, 'a screenshot of the page');
  assert.deepEqual(errors, [], 'the page logged no errors');
});
