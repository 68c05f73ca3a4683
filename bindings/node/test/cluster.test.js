'use strict';
// Three members inside one Node process form a cluster and survive the loss of their leader.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Node } = require('..');
const { tmpDir, freePorts, eventually } = require('./helpers');

test('a 3-member cluster in one process survives the loss of its leader', async () => {
  const ports = await freePorts(3);
  const initialCluster = {};
  ports.forEach((port, i) => {
    initialCluster[`n${i}`] = `http://127.0.0.1:${port}`;
  });
  const nodes = Object.entries(initialCluster).map(
    ([name, url]) =>
      new Node({
        name,
        dataDir: tmpDir(name),
        listenPeerUrls: [url],
        initialAdvertisePeerUrls: [url],
        initialCluster,
        initialClusterToken: 'node-cluster',
        heartbeatInterval: 50,
        electionTimeout: 500,
      }),
  );
  try {
    await Promise.all(nodes.map((n) => n.ready({ timeout: 30000 })));
    const w = await nodes[0].client().set('/shared', 'from n0');
    for (const n of nodes) {
      const r = await n.client().get('/shared', { quorum: true });
      assert.equal(r.node.value, 'from n0');
      assert.equal(r.etcdIndex, w.etcdIndex);
    }
    const members = await nodes[2].client().members();
    assert.deepEqual(members.map((m) => m.name).sort(), ['n0', 'n1', 'n2']);

    // Stop the leader: the other two elect a new one and go on, with everything acknowledged.
    const leaderId = (await nodes[0].client().leader()).id;
    const leader = nodes.find((n) => n.memberId === leaderId);
    assert.ok(leader, `no member has the leader's id ${leaderId}`);
    const acked = [];
    for (let i = 0; i < 20; i += 1) acked.push((await leader.client().set(`/before/${i}`, String(i))).node.key);
    await leader.close();
    const rest = nodes.filter((n) => n !== leader);
    const newLeader = await eventually(async () => {
      const l = await rest[0].client().leader();
      return l.id !== leaderId && l.id;
    }, 20000, 'a new leader');
    assert.ok(rest.some((n) => n.memberId === newLeader));
    const after = await eventually(() => rest[1].client().set('/after', 'elected'), 20000, 'a write after the election');
    assert.equal(after.node.value, 'elected');
    for (const n of rest) {
      const r = await n.client().get('/before', { recursive: true, quorum: true });
      assert.deepEqual(r.node.nodes.map((x) => x.key).sort(), [...acked].sort());
      assert.equal((await n.client().get('/after', { quorum: true })).node.value, 'elected');
    }
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test('a member keeps its data across a restart, and close is idempotent', async () => {
  const dataDir = tmpDir('restart');
  const first = new Node({ name: 'r', dataDir });
  await first.ready();
  await first.client().set('/kept', 'yes');
  await first.close();
  await first.close();
  assert.throws(() => first.client(), (e) => e.code === 'Stopped' && e.cause === 'the member is not running');
  const again = new Node({ name: 'r', dataDir });
  await again.ready();
  assert.equal((await again.client().get('/kept')).node.value, 'yes');
  await again.close();
});

test('a member left running lets the process exit (stopped by the exit hook), its writes kept', () => {
  const dataDir = tmpDir('exit');
  const script = `
    const { Node } = require(${JSON.stringify(require.resolve('..'))});
    (async () => {
      const node = new Node({ name: 'x', dataDir: ${JSON.stringify(dataDir)} });
      await node.ready();
      await node.client().set('/left', 'running');
      console.log('written');
    })();`;
  // The script ends without close(): the process must still exit, stopping the member.
  const run = require('node:child_process').spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(run.status, 0, `${run.signal || ''} ${run.stderr}`);
  assert.equal(run.stdout.trim(), 'written');
  return (async () => {
    const again = new Node({ name: 'x', dataDir });
    await again.ready();
    assert.equal((await again.client().get('/left')).node.value, 'running');
    await again.close();
  })();
});
