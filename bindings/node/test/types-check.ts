// Compiled by tsc (test/types.test.js), never run: every public name of index.d.ts used
// as a TypeScript program would use it, so a declaration that cannot be used fails.
import { Node, Client, EtcdError, Etcd, Watcher, CancellationToken, KeyResult, ErrorKind, Member, SyncResult } from '..';

async function everything(): Promise<void> {
  const node = new Node({ name: 'n', dataDir: '/tmp/n', snapshotCount: 100, initialCluster: { n: 'http://127.0.0.1:2380' } });
  await node.ready({ timeout: 1000 });
  const urls: string[] = [...node.clientUrls, ...node.peerUrls];
  const id: string = node.memberId + node.name;
  const failed: string | null = node.failure;
  const c: Client = node.client();
  const http = new Client({ endpoints: urls, timeout: 1000 });
  const r: KeyResult = await c.set('/k', 'v', { ttl: 5, prevExist: false });
  const value: string | undefined = r.node.value;
  const indices: number = r.etcdIndex + r.raftIndex + r.raftTerm + r.node.modifiedIndex;
  await http.get('/k', { recursive: true, sorted: true, quorum: true });
  await c.create('/c', 'v', { ttl: 1 });
  await c.createInOrder('/q', 'job');
  await c.update('/c', 'w');
  await c.mkdir('/d', { ttl: 9 });
  await c.rmdir('/d', { recursive: true });
  await c.delete('/c', { dir: false });
  await c.compareAndSwap('/k', 'v2', { prevValue: 'v', prevIndex: r.node.modifiedIndex });
  await c.compareAndDelete('/k', { prevIndex: 1 });
  await c.refresh('/k', 10);
  const ac = new AbortController();
  const w = c.watch('/k', { waitIndex: 1, recursive: true, signal: ac.signal });
  for await (const ev of w) {
    const prev: string | undefined = ev.prevNode?.value;
    if (prev) break;
  }
  w.cancel();
  const machines: string[] = await c.machines();
  const leader: Member = await c.leader();
  const members: Member[] = await c.members();
  await c.stats('self');
  const v: string = (await c.version()).etcdserver;
  const index: number = await c.lockAcquire('l', { ttl: 5, value: 'me', timeout: 1 });
  const holder: string = await c.lockRetrieve('l', 'index');
  await c.lockRenew('l', { ttl: 5, index });
  await c.lockRelease('l', { value: 'me' });
  await c.setLeader('svc', 'me', { ttl: 5, timeout: 1 });
  const lead: string = await c.getLeader('svc');
  await c.deleteLeader('svc', 'me');
  try {
    await c.get('/none');
  } catch (e) {
    if (e instanceof EtcdError) {
      const kind: ErrorKind = e.code;
      const body = e.toJSON();
      console.log(kind, e.errorCode, e.message, e.cause, e.index, body.errorCode);
    }
  }
  await node.close();

  const etcd = new Etcd(['127.0.0.1:2379'], { timeout: 1000 });
  const inProcess = new Etcd(c);
  const t: CancellationToken = etcd.set('k', 'v', { ttl: 5 }, (err, body, headers) => {
    console.log(err?.errorCode, err?.error?.cause, err?.errors, body, headers['x-etcd-index']);
  });
  t.abort();
  console.log(t.isAborted(), t.wasAborted(), t.aborted);
  t.cancel();
  etcd.set('k', null, () => {});
  const s: SyncResult = etcd.setSync('k', 'v', {});
  console.log(s.err, s.body, s.headers, etcd.getSync('k'), etcd.delSync('k'), etcd.mkdirSync('d'), etcd.rmdirSync('d', { recursive: true }));
  etcd.get('k', () => {});
  etcd.get('k', { recursive: true }, () => {});
  etcd.create('q', 'v', () => {});
  etcd.post('q', 'v', {}, () => {});
  etcd.del('k', () => {});
  etcd.delete('k', { recursive: true }, () => {});
  etcd.mkdir('d', () => {});
  etcd.rmdir('d', { recursive: true }, () => {});
  etcd.compareAndSwap('k', 'new', 'old', () => {});
  etcd.testAndSet('k', 'new', 'old', {}, () => {});
  etcd.compareAndDelete('k', 'old', () => {});
  etcd.testAndDelete('k', 'old', {}, () => {});
  etcd.raw('GET', 'v2/stats/self', null, {}, () => {});
  etcd.watch('k', () => {});
  etcd.watchIndex('k', 5, { recursive: true }, () => {});
  const watcher: Watcher = etcd.watcher('k', null, { recursive: true });
  watcher.on('change', (ev: KeyResult) => console.log(ev.node.key, watcher.index, watcher.key, watcher.retryAttempts, watcher.stopped));
  watcher.stop();
  new Watcher(inProcess, 'k').stop();
  etcd.machines((err, list) => console.log(err, list.length));
  etcd.leader((err, m) => console.log(m.id));
  etcd.leaderStats(() => {});
  etcd.selfStats(() => {});
  etcd.version((err, ver) => console.log(ver.etcdserver));
  console.log(etcd.getHosts(), etcd.hosts, etcd.options, watcher.etcd, watcher.options, watcher.request);
  console.log(urls, id, failed, value, indices, machines, leader, members, v, holder, lead);
}

void everything;
