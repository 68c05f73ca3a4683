'use strict';
// TLS: a member in this process serving https with a certificate it made itself
// (autoTls, etcd's --auto-tls), reached by the Promise client with `tls` options; https
// without TLS material is refused before any connection.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Node, Client, EtcdError } = require('..');
const { tmpDir } = require('./helpers');

test('the client reaches an https member with tls options, and https needs them', async () => {
  const node = new Node({
    name: 'tls',
    dataDir: tmpDir('tls'),
    listenClientUrls: 'https://127.0.0.1:0',
    autoTls: true,
  });
  try {
    await node.ready();
    const url = node.clientUrls[0];
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const client = new Client({ endpoints: [url], timeout: 10000, tls: { insecureSkipVerify: true } });
    await client.set('/secure', 'yes');
    assert.equal((await client.get('/secure')).node.value, 'yes');
    assert.throws(() => new Client({ endpoints: [url] }), (e) => e instanceof EtcdError && /https needs a CA/.test(e.cause));
  } finally {
    await node.close();
  }
});
