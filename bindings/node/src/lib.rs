//! `etcdrs.node`, the native half of the npm package `etcdrs`: core's `Node` and `Client`
//! for JavaScript. Every call that waits returns a Promise and runs on the core's client
//! runtime, never on the JS thread; the JS half (lib/) gives them etcd's shapes.

mod client;
mod errors;
mod node;
