'use strict';
// v2 auth: a member in this process with users and auth enabled (set up over its HTTP
// API, as an operator would); the Promise client with node-etcd's `auth` option.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Node, Client, EtcdError } = require('..');
const { tmpDir } = require('./helpers');

async function admin(url, method, path, body, user) {
  const headers = user ? { Authorization: `Basic ${Buffer.from(user).toString('base64')}` } : {};
  const r = await fetch(url + path, { method, headers, body });
  assert.ok(r.status === 200 || r.status === 201, `${method} ${path}: ${r.status}`);
}

test('the client sends auth as Basic credentials; without them it is refused', async () => {
  const node = new Node({ name: 'auth', dataDir: tmpDir('auth') });
  try {
    await node.ready();
    const url = node.clientUrls[0];
    await admin(url, 'PUT', '/v2/auth/users/root', '{"user":"root","password":"rootpw"}');
    await admin(url, 'PUT', '/v2/auth/enable', undefined, 'root:rootpw');
    await admin(url, 'DELETE', '/v2/auth/roles/guest', undefined, 'root:rootpw');
    const root = new Client({ endpoints: [url], timeout: 10000, auth: { user: 'root', pass: 'rootpw' } });
    await root.set('/guarded', 'yes');
    assert.equal((await root.get('/guarded')).node.value, 'yes');
    const refused = (e) => e instanceof EtcdError && e.errorCode === 110;
    await assert.rejects(new Client({ endpoints: [url], timeout: 10000 }).get('/guarded'), refused);
    const wrong = new Client({ endpoints: [url], timeout: 10000, auth: { user: 'root', pass: 'no' } });
    await assert.rejects(wrong.get('/guarded'), refused);
  } finally {
    await node.close();
  }
});
