'use strict';
// A member inside the Node process, and the Promise client over HTTP and in-process:
// identical results for every operation, watches, errors, and a JS thread that never waits.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Node, Client, EtcdError } = require('..');
const { tmpDir, sleep } = require('./helpers');

let node;
let local;
let http;

test.before(async () => {
  node = new Node({ name: 'solo', dataDir: tmpDir('solo') });
  await node.ready();
  local = node.client();
  http = new Client({ endpoints: node.clientUrls, timeout: 10000 });
});

test.after(async () => {
  await node.close();
});

/** What a call answered, or the error it threw (etcd's JSON and the kind). */
async function outcome(p) {
  try {
    return { ok: await p };
  } catch (e) {
    assert.ok(e instanceof EtcdError, `not an EtcdError: ${e && e.stack}`);
    return { error: { ...e.toJSON(), code: e.code } };
  }
}

/** Every keys-API, lock and leader operation under `p`, in order. */
async function everyOperation(c, p) {
  const out = [];
  const run = async (what, call) => out.push([what, await outcome(call)]);
  await run('set', c.set(`${p}/a`, '1'));
  await run('set ttl', c.set(`${p}/t`, 'x', { ttl: 1000 }));
  await run('get', c.get(`${p}/a`));
  await run('get quorum', c.get(`${p}/a`, { quorum: true }));
  await run('get missing', c.get(`${p}/missing`));
  await run('create', c.create(`${p}/c`, 'new'));
  await run('create exists', c.create(`${p}/c`, 'again'));
  await run('update', c.update(`${p}/c`, 'updated'));
  await run('update missing', c.update(`${p}/nope`, 'x'));
  await run('createInOrder 1', c.createInOrder(`${p}/queue`, 'job1'));
  await run('createInOrder 2', c.createInOrder(`${p}/queue`, 'job2'));
  await run('get sorted', c.get(`${p}/queue`, { recursive: true, sorted: true }));
  await run('mkdir', c.mkdir(`${p}/dir`));
  await run('mkdir exists', c.mkdir(`${p}/dir`));
  await run('set under dir', c.set(`${p}/dir/x`, 'y'));
  await run('get recursive', c.get(p, { recursive: true, sorted: true }));
  await run('set on dir', c.set(`${p}/dir`, 'v'));
  await run('cas prevValue', c.compareAndSwap(`${p}/a`, '2', { prevValue: '1' }));
  await run('cas fails', c.compareAndSwap(`${p}/a`, '3', { prevValue: '1' }));
  const a = await c.get(`${p}/a`);
  await run('cas prevIndex', c.compareAndSwap(`${p}/a`, '4', { prevIndex: a.node.modifiedIndex }));
  await run('cad fails', c.compareAndDelete(`${p}/a`, { prevValue: 'zzz' }));
  await run('cad', c.compareAndDelete(`${p}/a`, { prevValue: '4' }));
  await run('refresh', c.refresh(`${p}/t`, 2000));
  await run('refresh missing', c.refresh(`${p}/none`, 5));
  await run('bad ttl', c.set(`${p}/b`, 'v', { ttl: 'abc' }));
  await run('bad prevIndex', c.compareAndSwap(`${p}/b`, 'v', { prevIndex: 'x' }));
  await run('rmdir not empty', c.rmdir(`${p}/dir`));
  await run('rmdir recursive', c.rmdir(`${p}/dir`, { recursive: true }));
  await run('delete', c.delete(`${p}/c`));
  await run('delete dir recursive', c.delete(`${p}/queue`, { recursive: true }));
  await run('delete missing', c.delete(`${p}/c`));
  await run('root read only', c.delete('/', { recursive: true }));
  await run('lockAcquire', c.lockAcquire(`${p}-lock`, { ttl: 60, value: 'me' }).then((index) => ({ index })));
  await run('lockRetrieve value', c.lockRetrieve(`${p}-lock`));
  await run('lockRenew', c.lockRenew(`${p}-lock`, { ttl: 120, value: 'me' }));
  await run('lockRelease both', c.lockRelease(`${p}-lock`, { index: 1, value: 'me' }));
  await run('lockRelease', c.lockRelease(`${p}-lock`, { value: 'me' }));
  await run('lockRetrieve none', c.lockRetrieve(`${p}-lock`));
  await run('setLeader', c.setLeader(`${p}-svc`, 'n1', { ttl: 60 }).then((index) => ({ index })));
  await run('getLeader', c.getLeader(`${p}-svc`));
  await run('deleteLeader', c.deleteLeader(`${p}-svc`, 'n1'));
  await run('getLeader none', c.getLeader(`${p}-svc`));
  return out;
}

/** Results of two runs made comparable: the prefix taken out, indices counted from the
 * run's first answer, expiration times (wall clock) left out. */
function normalize(results, prefix) {
  const first = results[0][1].ok;
  const etcdBase = first.etcdIndex;
  const raftBase = first.raftIndex;
  const walk = (v, name) => {
    if (Array.isArray(v)) return v.map((x) => walk(x, name));
    if (v && typeof v === 'object') {
      const o = {};
      for (const [k, x] of Object.entries(v)) if (k !== 'expiration') o[k] = walk(x, k);
      return o;
    }
    if (typeof v === 'string') {
      // In-order keys are named by their index.
      return v.split(prefix).join('<p>').replace(/\d{20}/, (n) => `#${Number(n) - etcdBase}`);
    }
    // Index 0: an error found before the store was asked (etcd's form errors).
    if (typeof v === 'number' && ['createdIndex', 'modifiedIndex', 'etcdIndex', 'index'].includes(name) && v !== 0) {
      return v - etcdBase;
    }
    if (typeof v === 'number' && name === 'raftIndex') return v - raftBase;
    return v;
  };
  return results.map(([what, r]) => [what, walk(r, what)]);
}

test('in-process and HTTP clients give identical results for every operation', async () => {
  const viaLocal = normalize(await everyOperation(local, '/local'), '/local');
  const viaHttp = normalize(await everyOperation(http, '/http'), '/http');
  assert.deepEqual(viaHttp, viaLocal);
  // And the answers are etcd's.
  const get = new Map(viaLocal);
  assert.deepEqual(get.get('get').ok.node, { key: '<p>/a', value: '1', modifiedIndex: 0, createdIndex: 0 });
  assert.equal(get.get('create').ok.action, 'create');
  assert.equal(get.get('update').ok.prevNode.value, 'new');
  assert.equal(get.get('cas prevValue').ok.action, 'compareAndSwap');
  assert.equal(get.get('cad').ok.action, 'compareAndDelete');
  assert.equal(get.get('refresh').ok.node.ttl, 2000);
  assert.deepEqual(get.get('get sorted').ok.node.nodes.map((n) => n.value), ['job1', 'job2']);
  assert.deepEqual(get.get('lockRetrieve value').ok, 'me');
  assert.deepEqual(get.get('getLeader').ok, 'n1');
  for (const [what, code] of [
    ['get missing', 'KeyNotFound'],
    ['create exists', 'NodeExist'],
    ['update missing', 'KeyNotFound'],
    ['mkdir exists', 'NotFile'],
    ['set on dir', 'NotFile'],
    ['cas fails', 'TestFailed'],
    ['cad fails', 'TestFailed'],
    ['refresh missing', 'KeyNotFound'],
    ['bad ttl', 'TtlNan'],
    ['bad prevIndex', 'IndexNan'],
    ['rmdir not empty', 'DirNotEmpty'],
    ['delete missing', 'KeyNotFound'],
    ['root read only', 'RootReadOnly'],
    ['lockRelease both', 'IndexValueMutex'],
  ]) {
    assert.equal(get.get(what).error && get.get(what).error.code, code, what);
  }
});

test('errors carry etcd errorCode, message, cause and index, and a kind', async () => {
  await local.set('/err/file', 'v');
  const cases = [
    [() => local.get('/err/none'), { errorCode: 100, message: 'Key not found', cause: '/err/none', code: 'KeyNotFound' }],
    [() => local.set('/err/file', 'x', { prevValue: 'no' }), { errorCode: 101, message: 'Compare failed', cause: '[no != v]', code: 'TestFailed' }],
    [() => local.set('/err/file/below', 'x'), { errorCode: 104, message: 'Not a directory', cause: '/err/file', code: 'NotDir' }],
    [() => local.set('/err/t', 'x', { ttl: 'soon' }), { errorCode: 202, message: 'The given TTL in POST form is not a number', cause: 'invalid value for "ttl"', code: 'TtlNan' }],
    [() => local.delete('/err', { dir: true }), { errorCode: 108, message: 'Directory not empty', cause: '/err', code: 'DirNotEmpty' }],
    [() => local.lockRelease('/err-lock', {}), { errorCode: 207, message: 'Index or value is required', cause: 'Release', code: 'IndexOrValueRequired' }],
    [() => local.lockRetrieve('/err-lock', 'owner'), { errorCode: 209, message: 'Invalid field', cause: 'Get', code: 'InvalidField' }],
  ];
  for (const [call, want] of cases) {
    const err = await call().then(
      () => assert.fail(`no error: ${JSON.stringify(want)}`),
      (e) => e,
    );
    assert.ok(err instanceof EtcdError && err instanceof Error);
    assert.equal(err.name, 'EtcdError');
    const { errorCode, message, cause, code } = err;
    assert.deepEqual({ errorCode, message, cause, code }, want);
    assert.equal(typeof err.index, 'number');
    assert.deepEqual(Object.keys(err.toJSON()), ['errorCode', 'message', 'cause', 'index']);
  }
  // Nothing was changed by the refused writes.
  assert.equal((await local.get('/err/file')).node.value, 'v');
  // No member at all: the client's own kind.
  const dead = new Client({ endpoints: ['http://127.0.0.1:1'], timeout: 2000 });
  const err = await dead.get('/k').catch((e) => e);
  assert.ok(err instanceof EtcdError);
  assert.equal(err.code, 'ConnectionFailed');
  // A bad option to a Node throws at once, as etcd refuses a bad flag.
  assert.throws(() => new Node({ name: 'bad', dataDir: tmpDir('bad'), snapshotCount: 'many' }), (e) => e instanceof EtcdError && e.code === 'InvalidConfig');
  // A bad index to a watch.
  assert.throws(() => local.watch('/k', { waitIndex: -1 }), (e) => e instanceof EtcdError && e.code === 'InvalidArgument');
});

test('watch: history, every event in order between iterations, break and AbortSignal', async () => {
  const start = (await local.set('/w/k', '0')).etcdIndex + 1;
  for (let i = 1; i <= 5; i += 1) await local.set('/w/k', String(i));
  // Iterating slowly misses nothing: each wait starts after the last event seen.
  const seen = [];
  for await (const ev of local.watch('/w/k', { waitIndex: start })) {
    seen.push(ev.node.value);
    await sleep(10);
    if (seen.length === 5) break;
  }
  assert.deepEqual(seen, ['1', '2', '3', '4', '5']);

  // A recursive watch over HTTP sees a write made after it started waiting.
  const it = http.watch('/w', { recursive: true, waitIndex: (await http.get('/w/k')).etcdIndex + 1 })[Symbol.asyncIterator]();
  const next = it.next();
  await local.set('/w/sub/x', 'later');
  const { value } = await next;
  assert.equal(value.action, 'set');
  assert.equal(value.node.key, '/w/sub/x');
  await it.return();

  // An AbortSignal ends a waiting iteration at once.
  const ac = new AbortController();
  const waited = (async () => {
    const got = [];
    for await (const ev of local.watch('/w/never', { signal: ac.signal })) got.push(ev);
    return got;
  })();
  await sleep(100);
  const t0 = Date.now();
  ac.abort();
  assert.deepEqual(await waited, []);
  assert.ok(Date.now() - t0 < 2000);

  // An index out of etcd's history is an error thrown from the loop.
  for (let i = 0; i < 1001; i += 1) await local.set('/w/many', String(i));
  const err = await (async () => {
    for await (const ev of local.watch('/w/many', { waitIndex: 1 })) return ev;
  })().catch((e) => e);
  assert.ok(err instanceof EtcdError, String(err));
  assert.equal(err.code, 'EventIndexCleared');
  assert.equal(err.errorCode, 401);
});

test('the JS thread keeps running while calls wait', async () => {
  // A lock held by someone else: the acquire waits on the member, not on this thread.
  const holder = await local.lockAcquire('/busy', { ttl: 60, value: 'first' });
  let ticks = 0;
  const timer = setInterval(() => {
    ticks += 1;
  }, 10);
  const second = http.lockAcquire('/busy', { ttl: 60, value: 'second', timeout: 30 });
  const watch = local.watch('/idle')[Symbol.asyncIterator]();
  const idle = watch.next();
  await sleep(500);
  clearInterval(timer);
  assert.ok(ticks >= 20, `the event loop ran ${ticks} times in 500 ms`);
  await local.lockRelease('/busy', { index: holder });
  const index = await second;
  assert.ok(index > holder);
  assert.equal(await local.lockRetrieve('/busy'), 'second');
  await watch.return();
  assert.deepEqual(await idle, { done: true, value: undefined });
});

test('cluster facts', async () => {
  for (const c of [local, http]) {
    assert.deepEqual(await c.machines(), node.clientUrls);
    const members = await c.members();
    assert.equal(members.length, 1);
    assert.equal(members[0].id, node.memberId);
    assert.equal(members[0].name, 'solo');
    assert.equal((await c.leader()).id, node.memberId);
    assert.equal((await c.stats('self')).name, 'solo');
    assert.equal(typeof (await c.stats('store')).setsSuccess, 'number');
    assert.equal((await c.stats('leader')).leader, node.memberId);
    assert.deepEqual(Object.keys(await c.version()), ['etcdserver', 'etcdcluster']);
  }
  assert.equal(node.failure, null);
  assert.equal(node.name, 'solo');
  assert.match(node.memberId, /^[0-9a-f]+$/);
  assert.ok(node.peerUrls[0].startsWith('http://127.0.0.1:'));
});
