'use strict';
// index.d.ts against the real exports: the classes and their members declared there are
// exactly those the package has (drift either way fails), and tsc compiles a program that
// uses every declaration (test/types-check.ts).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { EventEmitter } = require('node:events');
const ts = require('typescript');
const etcdrs = require('..');

const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');

/** { class name: Set of public member names } of the classes a .d.ts exports. */
function declaredClasses(text) {
  const sf = ts.createSourceFile('index.d.ts', text, ts.ScriptTarget.Latest, true);
  const classes = {};
  for (const st of sf.statements) {
    const exported = st.modifiers && st.modifiers.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (!exported || !ts.isClassDeclaration(st)) continue;
    const members = new Set();
    for (const m of st.members) {
      if (m.name && !ts.isConstructorDeclaration(m)) members.add(m.name.getText(sf));
    }
    classes[st.name.text] = members;
  }
  return classes;
}

/** The public members of a class at run time: its prototype chain (up to Error or
 * EventEmitter) and the own properties of an instance. */
function runtimeMembers(cls, instance) {
  const names = new Set();
  const stop = new Set([Object.prototype, Error.prototype, EventEmitter.prototype]);
  for (let p = cls.prototype; p && !stop.has(p); p = Object.getPrototypeOf(p)) {
    for (const n of Object.getOwnPropertyNames(p)) names.add(n);
  }
  if (instance) for (const n of Object.getOwnPropertyNames(instance)) names.add(n);
  for (const n of [...names]) {
    if (n === 'constructor' || n.startsWith('_')) names.delete(n);
  }
  // Error's own instance properties.
  if (instance instanceof Error) for (const n of ['stack', 'name']) names.delete(n);
  // EventEmitter's own instance bookkeeping.
  if (instance instanceof EventEmitter) for (const n of Object.getOwnPropertyNames(new EventEmitter())) names.delete(n);
  return names;
}

/** Every difference between the declared classes and the real ones. */
function drift(declared, real) {
  const problems = [];
  for (const name of Object.keys(declared)) if (!(name in real)) problems.push(`${name}: declared, not exported`);
  for (const name of Object.keys(real)) if (!(name in declared)) problems.push(`${name}: exported, not declared`);
  for (const [name, members] of Object.entries(declared)) {
    if (!(name in real)) continue;
    for (const m of members) if (!real[name].has(m)) problems.push(`${name}.${m}: declared, missing`);
    for (const m of real[name]) if (!members.has(m)) problems.push(`${name}.${m}: present, not declared`);
  }
  return problems.sort();
}

/** The package's classes at run time, each with an instance where one can be made here
 * without a member (a Node's public surface is all on its prototype). */
function realClasses() {
  const etcd = new etcdrs.Etcd('127.0.0.1:1');
  const watcher = etcd.watcher('/k', null, { maxRetries: 0 });
  watcher.on('reconnect', () => {});
  watcher.stop();
  const instances = {
    Client: new etcdrs.Client({ endpoints: ['http://127.0.0.1:1'] }),
    EtcdError: new etcdrs.EtcdError({ errorCode: 100, message: 'Key not found', cause: '/k', index: 1, code: 'KeyNotFound' }),
    Etcd: etcd,
    Watcher: watcher,
    CancellationToken: new etcdrs.CancellationToken(),
  };
  const real = {};
  for (const [name, value] of Object.entries(etcdrs)) {
    assert.equal(typeof value, 'function', `${name} is not a class`);
    real[name] = runtimeMembers(value, instances[name]);
  }
  return real;
}

test('index.d.ts declares exactly the exported classes and their members', () => {
  assert.deepEqual(drift(declaredClasses(dts), realClasses()), []);
});

test('the drift check finds a missing and an undeclared member and class', () => {
  const changed = dts
    .replace('  refresh(key: string, ttl: number): Promise<KeyResult>;\n', '  bogus(): void;\n')
    .replace('export class CancellationToken {', 'class CancellationToken {');
  assert.deepEqual(drift(declaredClasses(changed), realClasses()), [
    'CancellationToken: exported, not declared',
    'Client.bogus: declared, missing',
    'Client.refresh: present, not declared',
  ]);
});

test('tsc compiles a program that uses every declaration', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
