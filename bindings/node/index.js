'use strict';
// etcdrs for Node: members inside this process (Node), a Promise client over HTTP or
// in-process (Client), etcd's errors (EtcdError), and node-etcd's API (Etcd).
const { Node } = require('./lib/node');
const { Client } = require('./lib/client');
const { EtcdError } = require('./lib/errors');
const { Etcd, Watcher, CancellationToken } = require('./lib/etcd');

module.exports = { Node, Client, EtcdError, Etcd, Watcher, CancellationToken };
