//! raft-rs logs through slog; this drain forwards its records to `tracing` (target
//! `raft`), so elections and term changes appear in the member's log.

use slog::{Drain, Key, Level, Never, OwnedKVList, Record, KV};
use std::fmt::Write as _;

pub struct TracingDrain;

struct Pairs(String);

impl slog::Serializer for Pairs {
    fn emit_arguments(&mut self, key: Key, val: &std::fmt::Arguments) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

fn enabled(level: Level) -> bool {
    match level {
        Level::Critical | Level::Error => tracing::enabled!(target: "raft", tracing::Level::ERROR),
        Level::Warning => tracing::enabled!(target: "raft", tracing::Level::WARN),
        Level::Info => tracing::enabled!(target: "raft", tracing::Level::INFO),
        Level::Debug => tracing::enabled!(target: "raft", tracing::Level::DEBUG),
        Level::Trace => tracing::enabled!(target: "raft", tracing::Level::TRACE),
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), Never> {
        if !enabled(record.level()) {
            return Ok(());
        }
        let mut pairs = Pairs(String::new());
        let _ = record.kv().serialize(record, &mut pairs);
        let _ = values.serialize(record, &mut pairs);
        let msg = format!("{}{}", record.msg(), pairs.0);
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "raft", "{msg}"),
            Level::Warning => tracing::warn!(target: "raft", "{msg}"),
            Level::Info => tracing::info!(target: "raft", "{msg}"),
            Level::Debug => tracing::debug!(target: "raft", "{msg}"),
            Level::Trace => tracing::trace!(target: "raft", "{msg}"),
        }
        Ok(())
    }
}

/// The logger to give raft-rs.
pub fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!())
}
