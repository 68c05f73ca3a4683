'use strict';
// Builds the native module from source with cargo (no prebuilt download) and puts it next
// to the package as etcdrs.node. The release profile unless ETCDRS_NODE_PROFILE names
// another (the test scripts use dev, to share the workspace's build). Cargo says where the
// library is (CARGO_TARGET_DIR is honoured).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.join(__dirname, '..');
const profile = process.env.ETCDRS_NODE_PROFILE || 'release';
const cargo = process.env.CARGO || 'cargo';
const run = spawnSync(
  cargo,
  ['build', '-p', 'etcdrs-node', '--profile', profile, '--message-format=json-render-diagnostics'],
  { cwd: pkg, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024 },
);
if (run.error || run.status !== 0) {
  console.error(`etcdrs: cargo build failed (${run.error ? run.error.message : `exit ${run.status}`})`);
  process.exit(1);
}
let library = null;
for (const line of run.stdout.toString().split('\n')) {
  if (!line.startsWith('{')) continue;
  const msg = JSON.parse(line);
  if (msg.reason === 'compiler-artifact' && msg.target.name === 'etcdrs_node') {
    library = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f));
  }
}
if (!library) {
  console.error('etcdrs: cargo built no etcdrs_node library');
  process.exit(1);
}
const out = path.join(pkg, 'etcdrs.node');
// Replace, never overwrite in place: a running process may have the old file mapped.
fs.rmSync(out, { force: true });
fs.copyFileSync(library, out);
console.log(`etcdrs: built ${out} (${profile})`);
