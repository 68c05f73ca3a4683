//! etcd's v3 messages and gRPC services, generated from core/proto at build time.
#![allow(clippy::all, missing_docs)]

pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
}

pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

/// What v3 writes carry through the raft log.
pub mod etcdrs {
    include!(concat!(env!("OUT_DIR"), "/etcdrs.rs"));
}
