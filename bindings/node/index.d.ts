// Types of the npm package `etcdrs`. test/types.test.js checks them against the real
// exports (a member declared here and missing there, or the reverse, fails) and compiles
// test/types-check.ts, which uses all of them, with tsc.

import { EventEmitter } from 'node:events';

/** etcd's flags in camelCase; what is not given is the core's default (ephemeral ports on
 * 127.0.0.1, a single-member cluster). Any other etcd flag may be given the same way. */
export interface NodeOptions {
  name?: string;
  /** Default `<name>.etcd`, as etcd. */
  dataDir?: string;
  listenClientUrls?: string | string[];
  advertiseClientUrls?: string | string[];
  listenPeerUrls?: string | string[];
  initialAdvertisePeerUrls?: string | string[];
  /** 'name=url,...', or { name: peerUrl }. */
  initialCluster?: string | Record<string, string>;
  initialClusterState?: 'new' | 'existing';
  initialClusterToken?: string;
  snapshotCount?: number;
  /** Milliseconds. */
  heartbeatInterval?: number;
  /** Milliseconds. */
  electionTimeout?: number;
  [flag: string]: string | number | boolean | string[] | Record<string, string> | undefined;
}

/** A member running inside this process. */
export class Node {
  /** Starts the member; a bad option throws an EtcdError ('InvalidConfig') here. */
  constructor(options?: NodeOptions);
  /** Wait until the member has started and joined its cluster (`timeout` ms, default 60000). */
  ready(options?: { timeout?: number }): Promise<this>;
  readonly name: string;
  /** The member id as etcd spells it (hex). */
  readonly memberId: string;
  readonly clientUrls: string[];
  readonly peerUrls: string[];
  /** Why the member failed and serves no more, or null while it runs. */
  readonly failure: string | null;
  /** A client of this member in this process (no HTTP). */
  client(): Client;
  /** Stop the member (idempotent). */
  close(): Promise<void>;
}

/** A node of etcd's v2 key tree, as etcd's JSON has it. */
export interface EtcdNode {
  key: string;
  value?: string;
  dir?: boolean;
  createdIndex: number;
  modifiedIndex: number;
  ttl?: number;
  expiration?: string;
  nodes?: EtcdNode[];
}

/** A keys-API answer: etcd's JSON plus the index headers. */
export interface KeyResult {
  action: 'get' | 'set' | 'create' | 'update' | 'delete' | 'expire' | 'compareAndSwap' | 'compareAndDelete';
  node: EtcdNode;
  prevNode?: EtcdNode;
  etcdIndex: number;
  raftIndex: number;
  raftTerm: number;
}

export interface ClientOptions {
  /** Client URLs ('http://host:port'), a list or comma-separated; default http://127.0.0.1:2379. */
  endpoints?: string | string[];
  /** Milliseconds bounding each call but watches and lock or leader waits. */
  timeout?: number;
  /** For https endpoints (file paths, as etcdctl's --cacert, --cert, --key). */
  tls?: {
    /** The CA that signed the members' certificates. */
    caFile?: string;
    /** This client's certificate and key, for members that require one. */
    certFile?: string;
    keyFile?: string;
    /** Check no certificate (self-signed members, --auto-tls). */
    insecureSkipVerify?: boolean;
  };
  /** A user and password for members with auth enabled (node-etcd's option). */
  auth?: { user: string; pass: string };
}

export interface WatchOptions {
  /** Start from this index (default: the changes after the first iteration asks). */
  waitIndex?: number;
  recursive?: boolean;
  /** Ends the watch (the loop ends without an error). */
  signal?: AbortSignal;
}

/** A watch: an async iterator over every change, in order. */
export interface Watch extends AsyncIterableIterator<KeyResult> {
  /** End the watch from anywhere: a waiting iteration ends at once. */
  cancel(): void;
}

export interface Member {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
}

/** A client of an etcd cluster (over HTTP, with failover) or of an in-process member. */
export class Client {
  constructor(options?: ClientOptions);
  get(key: string, options?: { recursive?: boolean; sorted?: boolean; quorum?: boolean }): Promise<KeyResult>;
  set(key: string, value: string, options?: { ttl?: number; prevValue?: string; prevIndex?: number; prevExist?: boolean }): Promise<KeyResult>;
  create(key: string, value: string, options?: { ttl?: number }): Promise<KeyResult>;
  createInOrder(dir: string, value: string, options?: { ttl?: number }): Promise<KeyResult>;
  update(key: string, value: string, options?: { ttl?: number }): Promise<KeyResult>;
  mkdir(key: string, options?: { ttl?: number; prevExist?: boolean }): Promise<KeyResult>;
  rmdir(key: string, options?: { recursive?: boolean }): Promise<KeyResult>;
  delete(key: string, options?: { recursive?: boolean; dir?: boolean }): Promise<KeyResult>;
  compareAndSwap(key: string, value: string, options: { prevValue?: string; prevIndex?: number; ttl?: number }): Promise<KeyResult>;
  compareAndDelete(key: string, options: { prevValue?: string; prevIndex?: number }): Promise<KeyResult>;
  refresh(key: string, ttl: number): Promise<KeyResult>;
  watch(key: string, options?: WatchOptions): Watch;
  machines(): Promise<string[]>;
  leader(): Promise<Member>;
  members(): Promise<Member[]>;
  stats(kind: 'self' | 'store' | 'leader'): Promise<Record<string, unknown>>;
  version(): Promise<{ etcdserver: string; etcdcluster: string }>;
  /** Answers the holder's index. `timeout` in seconds. */
  lockAcquire(name: string, options: { ttl: number; value?: string; timeout?: number }): Promise<number>;
  lockRetrieve(name: string, field?: 'value' | 'index'): Promise<string>;
  lockRenew(name: string, options: { ttl: number; index?: number; value?: string }): Promise<void>;
  lockRelease(name: string, options: { index?: number; value?: string }): Promise<void>;
  /** Answers the leadership's index. `timeout` in seconds. */
  setLeader(name: string, leader: string, options: { ttl: number; timeout?: number }): Promise<number>;
  getLeader(name: string): Promise<string>;
  deleteLeader(name: string, leader: string): Promise<void>;
}

/** The kinds of error, the core's ErrorCode names. */
export type ErrorKind =
  | 'KeyNotFound' | 'TestFailed' | 'NotFile' | 'NoMorePeer' | 'NotDir' | 'NodeExist'
  | 'KeyIsPreserved' | 'RootReadOnly' | 'DirNotEmpty' | 'ExistingPeerAddr' | 'Unauthorized'
  | 'ValueRequired' | 'PrevValueRequired' | 'TtlNan' | 'IndexNan' | 'ValueOrTtlRequired'
  | 'TimeoutNan' | 'NameRequired' | 'IndexOrValueRequired' | 'IndexValueMutex'
  | 'InvalidField' | 'InvalidForm' | 'RefreshValue' | 'RefreshTtlRequired' | 'RaftInternal'
  | 'LeaderElect' | 'WatcherCleared' | 'EventIndexCleared' | 'NullArgument' | 'InvalidUtf8'
  | 'ConnectionFailed' | 'Timeout' | 'Panic' | 'Io' | 'InvalidConfig' | 'BadResponse'
  | 'Cancelled' | 'Stopped' | 'Corrupt' | 'InvalidArgument' | 'NotLeader' | 'MemberNotFound'
  | 'MemberRemoved';

/** An error etcd (or etcdrs) answered. */
export class EtcdError extends Error {
  /** etcd's errorCode (etcdrs's own from 1000). */
  errorCode: number;
  message: string;
  cause: string;
  index: number;
  code: ErrorKind;
  /** etcd's JSON error body: { errorCode, message, cause, index }. */
  toJSON(): { errorCode: number; message: string; cause: string; index: number };
}

/** node-etcd's error: an etcd error (errorCode, error = etcd's body) or, when no member
 * answered, 'All servers returned error' with `errors`. */
export interface NodeEtcdError extends Error {
  errorCode?: number;
  error?: { errorCode: number; message: string; cause: string; index: number };
  errors?: Array<{ server: string | null; httperror: unknown; timestamp: Date }>;
  retries?: number;
}

export type Headers = Record<string, string>;
export type NodeEtcdCallback<T = any> = (err: NodeEtcdError | null, body: T, headers: Headers) => void;
export interface SyncResult<T = any> {
  err: NodeEtcdError | null;
  body: T;
  headers: Headers;
}
/** node-etcd's request options: etcd's fields, plus maxRetries. */
export type NodeEtcdOptions = Record<string, string | number | boolean | undefined>;

/** What node-etcd's calls return. */
export class CancellationToken {
  aborted: boolean;
  isAborted(): boolean;
  abort(): void;
  cancel(): void;
  wasAborted(): boolean;
}

/** node-etcd 7's client: `new Etcd(hosts, options)`. */
export class Etcd {
  /** `hosts`: 'host:port', a URL, a list of them, or a Client (e.g. node.client()).
   * `options.timeout` (ms) bounds each request. */
  constructor(hosts?: string | string[] | Client, options?: { timeout?: number; [name: string]: unknown });
  hosts: string[];
  options: { timeout?: number; [name: string]: unknown };
  set(key: string, value: string | null, callback?: NodeEtcdCallback): CancellationToken;
  set(key: string, value: string | null, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  setSync(key: string, value: string | null, options?: NodeEtcdOptions): SyncResult;
  get(key: string, callback?: NodeEtcdCallback): CancellationToken;
  get(key: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  getSync(key: string, options?: NodeEtcdOptions): SyncResult;
  create(dir: string, value: string, callback?: NodeEtcdCallback): CancellationToken;
  create(dir: string, value: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  post(dir: string, value: string, callback?: NodeEtcdCallback): CancellationToken;
  post(dir: string, value: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  del(key: string, callback?: NodeEtcdCallback): CancellationToken;
  del(key: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  delete(key: string, callback?: NodeEtcdCallback): CancellationToken;
  delete(key: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  delSync(key: string, options?: NodeEtcdOptions): SyncResult;
  mkdir(dir: string, callback?: NodeEtcdCallback): CancellationToken;
  mkdir(dir: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  mkdirSync(dir: string, options?: NodeEtcdOptions): SyncResult;
  rmdir(dir: string, callback?: NodeEtcdCallback): CancellationToken;
  rmdir(dir: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  rmdirSync(dir: string, options?: NodeEtcdOptions): SyncResult;
  compareAndSwap(key: string, value: string, oldvalue: string, callback?: NodeEtcdCallback): CancellationToken;
  compareAndSwap(key: string, value: string, oldvalue: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  testAndSet(key: string, value: string, oldvalue: string, callback?: NodeEtcdCallback): CancellationToken;
  testAndSet(key: string, value: string, oldvalue: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  compareAndDelete(key: string, oldvalue: string, callback?: NodeEtcdCallback): CancellationToken;
  compareAndDelete(key: string, oldvalue: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  testAndDelete(key: string, oldvalue: string, callback?: NodeEtcdCallback): CancellationToken;
  testAndDelete(key: string, oldvalue: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  raw(method: string, path: string, value: string | null, callback?: NodeEtcdCallback): CancellationToken;
  raw(method: string, path: string, value: string | null, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  watch(key: string, callback?: NodeEtcdCallback): CancellationToken;
  watch(key: string, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  watchIndex(key: string, index: number, callback?: NodeEtcdCallback): CancellationToken;
  watchIndex(key: string, index: number, options: NodeEtcdOptions, callback?: NodeEtcdCallback): CancellationToken;
  watcher: (key: string, index?: number | null, options?: NodeEtcdOptions) => Watcher;
  machines(callback?: NodeEtcdCallback<string[]>): CancellationToken;
  getHosts(): string[];
  leader(callback?: NodeEtcdCallback<Member>): CancellationToken;
  leaderStats(callback?: NodeEtcdCallback): CancellationToken;
  selfStats(callback?: NodeEtcdCallback): CancellationToken;
  version(callback?: NodeEtcdCallback<{ etcdserver: string; etcdcluster: string }>): CancellationToken;
}

/** node-etcd's watcher: emits 'change' and the action's name for every change, 'resync',
 * 'reconnect', 'error' and 'stop'. */
export class Watcher extends EventEmitter {
  constructor(etcd: Etcd, key: string, index?: number | null, options?: NodeEtcdOptions);
  etcd: Etcd;
  key: string;
  index: number | null;
  options: NodeEtcdOptions;
  stopped: boolean;
  retryAttempts: number;
  request: CancellationToken;
  stop(): void;
}
