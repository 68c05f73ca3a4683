'use strict';
// The README's Node example runs as written (its data dir moved under a temporary
// directory) in a project where `npm install <this package>` was run, as the README says.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { tmpDir } = require('./helpers');

const readme = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

test('the README has its Node example', () => {
  assert.equal(blocks.length, 1);
});

test('the README Node example runs and prints what its comments say', () => {
  const dir = tmpDir('readme');
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name": "readme-example", "private": true}');
  // The dev profile, as the rest of the tests: the install script builds nothing new.
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', path.join(__dirname, '..')], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 600000,
    env: { ...process.env, ETCDRS_NODE_PROFILE: process.env.ETCDRS_NODE_PROFILE || 'dev' },
  });
  assert.equal(install.status, 0, install.stdout + install.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'node_modules', 'etcdrs', 'etcdrs.node')));
  const script = path.join(dir, 'example.js');
  fs.writeFileSync(script, blocks[0].replaceAll("'/tmp/", `'${dir}/`));
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.stdout.trim().split('\n'), [
    'fast',
    'set /config/mode fast',
    'KeyNotFound 100 /missing',
    'fast 4',
  ]);
});
