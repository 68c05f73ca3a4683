//! The store's counters, served at /v2/stats/store. Counters of writes move on every
//! member (they are applied); counters of reads are local to the member.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    GetSuccess,
    GetFail,
    SetSuccess,
    SetFail,
    DeleteSuccess,
    DeleteFail,
    UpdateSuccess,
    UpdateFail,
    CreateSuccess,
    CreateFail,
    CompareAndSwapSuccess,
    CompareAndSwapFail,
    CompareAndDeleteSuccess,
    CompareAndDeleteFail,
    ExpireCount,
}

const KINDS: usize = 15;

#[derive(Debug, Default)]
pub struct Stats {
    counters: [AtomicU64; KINDS],
}

/// The JSON of /v2/stats/store, in etcd's field order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    pub gets_success: u64,
    pub gets_fail: u64,
    pub sets_success: u64,
    pub sets_fail: u64,
    pub delete_success: u64,
    pub delete_fail: u64,
    pub update_success: u64,
    pub update_fail: u64,
    pub create_success: u64,
    pub create_fail: u64,
    pub compare_and_swap_success: u64,
    pub compare_and_swap_fail: u64,
    pub compare_and_delete_success: u64,
    pub compare_and_delete_fail: u64,
    pub expire_count: u64,
    pub watchers: u64,
}

impl Stats {
    pub fn inc(&self, kind: StatKind) {
        self.counters[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn get(&self, kind: StatKind) -> u64 {
        self.counters[kind as usize].load(Relaxed)
    }

    pub fn snapshot(&self, watchers: u64) -> StoreStats {
        use StatKind::*;
        StoreStats {
            gets_success: self.get(GetSuccess),
            gets_fail: self.get(GetFail),
            sets_success: self.get(SetSuccess),
            sets_fail: self.get(SetFail),
            delete_success: self.get(DeleteSuccess),
            delete_fail: self.get(DeleteFail),
            update_success: self.get(UpdateSuccess),
            update_fail: self.get(UpdateFail),
            create_success: self.get(CreateSuccess),
            create_fail: self.get(CreateFail),
            compare_and_swap_success: self.get(CompareAndSwapSuccess),
            compare_and_swap_fail: self.get(CompareAndSwapFail),
            compare_and_delete_success: self.get(CompareAndDeleteSuccess),
            compare_and_delete_fail: self.get(CompareAndDeleteFail),
            expire_count: self.get(ExpireCount),
            watchers,
        }
    }

    /// Counters as saved in a snapshot (the order of StatKind).
    pub fn to_vec(&self) -> Vec<u64> {
        self.counters.iter().map(|c| c.load(Relaxed)).collect()
    }

    pub fn from_vec(values: &[u64]) -> Stats {
        let s = Stats::default();
        for (c, v) in s.counters.iter().zip(values) {
            c.store(*v, Relaxed);
        }
        s
    }
}
