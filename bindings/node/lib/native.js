'use strict';
// The native module (etcdrs.node), built from the Rust crate by `npm install`
// (scripts/build.js).
const path = require('node:path');

const file = path.join(__dirname, '..', 'etcdrs.node');
let native;
try {
  native = require(file);
} catch (e) {
  const err = new Error(
    `etcdrs: the native module ${file} is missing or does not load (${e.message}); ` +
      'build it with `npm install` in bindings/node (it runs cargo)');
  err.cause = e;
  throw err;
}
module.exports = native;
