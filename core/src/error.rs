//! The one error type of etcdrs. `code()` is etcd's v2 errorCode for etcd errors; codes from
//! 1000 up are etcdrs's own and are never renumbered (the C ABI and bindings expose them).

use serde::{Deserialize, Serialize};
use std::fmt;

/// etcd's v2 error codes (api/v2error) plus etcdrs library codes from 1000 up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    KeyNotFound = 100,
    TestFailed = 101,
    NotFile = 102,
    NoMorePeer = 103,
    NotDir = 104,
    NodeExist = 105,
    KeyIsPreserved = 106,
    RootReadOnly = 107,
    DirNotEmpty = 108,
    ExistingPeerAddr = 109,
    Unauthorized = 110,

    ValueRequired = 200,
    PrevValueRequired = 201,
    TtlNan = 202,
    IndexNan = 203,
    ValueOrTtlRequired = 204,
    TimeoutNan = 205,
    NameRequired = 206,
    IndexOrValueRequired = 207,
    IndexValueMutex = 208,
    InvalidField = 209,
    InvalidForm = 210,
    RefreshValue = 211,
    RefreshTtlRequired = 212,

    RaftInternal = 300,
    LeaderElect = 301,

    WatcherCleared = 400,
    EventIndexCleared = 401,

    // etcdrs library codes: never renumber, only append.
    NullArgument = 1000,
    InvalidUtf8 = 1001,
    ConnectionFailed = 1002,
    Timeout = 1003,
    NotStarted = 1004,
    Panic = 1005,
    Io = 1006,
    InvalidConfig = 1007,
    BadResponse = 1008,
    Cancelled = 1009,
    Stopped = 1010,
    Corrupt = 1011,
    InvalidArgument = 1012,
    NotLeader = 1013,
    MemberNotFound = 1014,
    MemberRemoved = 1015,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        Self::KeyNotFound,
        Self::TestFailed,
        Self::NotFile,
        Self::NoMorePeer,
        Self::NotDir,
        Self::NodeExist,
        Self::KeyIsPreserved,
        Self::RootReadOnly,
        Self::DirNotEmpty,
        Self::ExistingPeerAddr,
        Self::Unauthorized,
        Self::ValueRequired,
        Self::PrevValueRequired,
        Self::TtlNan,
        Self::IndexNan,
        Self::ValueOrTtlRequired,
        Self::TimeoutNan,
        Self::NameRequired,
        Self::IndexOrValueRequired,
        Self::IndexValueMutex,
        Self::InvalidField,
        Self::InvalidForm,
        Self::RefreshValue,
        Self::RefreshTtlRequired,
        Self::RaftInternal,
        Self::LeaderElect,
        Self::WatcherCleared,
        Self::EventIndexCleared,
        Self::NullArgument,
        Self::InvalidUtf8,
        Self::ConnectionFailed,
        Self::Timeout,
        Self::NotStarted,
        Self::Panic,
        Self::Io,
        Self::InvalidConfig,
        Self::BadResponse,
        Self::Cancelled,
        Self::Stopped,
        Self::Corrupt,
        Self::InvalidArgument,
        Self::NotLeader,
        Self::MemberNotFound,
        Self::MemberRemoved,
    ];

    pub fn from_code(code: u32) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| *c as u32 == code)
    }

    /// etcd's message text for the code (v2error's table, verbatim).
    pub fn message(self) -> &'static str {
        use ErrorCode::*;
        match self {
            KeyNotFound => "Key not found",
            TestFailed => "Compare failed",
            NotFile => "Not a file",
            NoMorePeer => "Reached the max number of peers in the cluster",
            NotDir => "Not a directory",
            NodeExist => "Key already exists",
            KeyIsPreserved => "The prefix of given key is a keyword in etcd",
            RootReadOnly => "Root is read only",
            DirNotEmpty => "Directory not empty",
            ExistingPeerAddr => "Peer address has existed",
            Unauthorized => "The request requires user authentication",
            ValueRequired => "Value is Required in POST form",
            PrevValueRequired => "PrevValue is Required in POST form",
            TtlNan => "The given TTL in POST form is not a number",
            IndexNan => "The given index in POST form is not a number",
            ValueOrTtlRequired => "Value or TTL is required in POST form",
            TimeoutNan => "The given timeout in POST form is not a number",
            NameRequired => "Name is required in POST form",
            IndexOrValueRequired => "Index or value is required",
            IndexValueMutex => "Index and value cannot both be specified",
            InvalidField => "Invalid field",
            InvalidForm => "Invalid POST form",
            RefreshValue => "Value provided on refresh",
            RefreshTtlRequired => "A TTL must be provided on refresh",
            RaftInternal => "Raft Internal Error",
            LeaderElect => "During Leader Election",
            WatcherCleared => "watcher is cleared due to etcd recovery",
            EventIndexCleared => "The event in requested index is outdated and cleared",
            NullArgument => "Null argument",
            InvalidUtf8 => "Invalid UTF-8",
            ConnectionFailed => "Connection failed",
            Timeout => "Timed out",
            NotStarted => "Not started",
            Panic => "Internal panic",
            Io => "I/O error",
            InvalidConfig => "Invalid configuration",
            BadResponse => "Bad response from server",
            Cancelled => "Cancelled",
            Stopped => "Member stopped",
            Corrupt => "Data corrupt",
            InvalidArgument => "Invalid argument",
            NotLeader => "not current leader",
            MemberNotFound => "No such member",
            MemberRemoved => "Member permanently removed",
        }
    }

    /// The HTTP status etcd answers with for this code (400 where etcd has no entry).
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            KeyNotFound | MemberNotFound => 404,
            ExistingPeerAddr => 409,
            MemberRemoved => 410,
            NotFile | DirNotEmpty | NotLeader => 403,
            Unauthorized => 401,
            TestFailed | NodeExist => 412,
            RaftInternal | LeaderElect => 500,
            Timeout | ConnectionFailed | Stopped | NotStarted => 503,
            Io | Corrupt | Panic | BadResponse => 500,
            _ => 400,
        }
    }
}

/// An etcd error: code, cause and the store index at the time of the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub cause: String,
    pub index: u64,
}

impl Error {
    pub fn new(code: ErrorCode, cause: impl Into<String>, index: u64) -> Error {
        Error {
            code,
            cause: cause.into(),
            index,
        }
    }

    /// The numeric code: etcd's errorCode, or an etcdrs code from 1000 up.
    pub fn code(&self) -> u32 {
        self.code as u32
    }

    pub fn message(&self) -> &'static str {
        self.code.message()
    }

    /// etcd's JSON rendering, `{"errorCode":..,"message":..,"cause":..,"index":..}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&ErrorJson::from(self)).expect("error json")
    }

    pub fn from_json(text: &str) -> Option<Error> {
        let j: ErrorJson = serde_json::from_str(text).ok()?;
        let code = ErrorCode::from_code(j.error_code)?;
        Some(Error::new(code, j.cause, j.index))
    }

    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Error {
        Error::new(ErrorCode::Io, format!("{context}: {err}"), 0)
    }
}

#[derive(Serialize, Deserialize)]
struct ErrorJson {
    #[serde(rename = "errorCode")]
    error_code: u32,
    #[serde(default)]
    message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cause: String,
    #[serde(default)]
    index: u64,
}

impl From<&Error> for ErrorJson {
    fn from(e: &Error) -> Self {
        ErrorJson {
            error_code: e.code(),
            message: e.message().to_string(),
            cause: e.cause.clone(),
            index: e.index,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.code(), self.message(), self.cause)?;
        if self.index > 0 {
            write!(f, " [index {}]", self.index)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// The text of a caught panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_matches_etcd_layout() {
        let e = Error::new(ErrorCode::KeyNotFound, "/nope", 6);
        assert_eq!(
            e.to_json(),
            r#"{"errorCode":100,"message":"Key not found","cause":"/nope","index":6}"#
        );
        assert_eq!(Error::from_json(&e.to_json()), Some(e));
        let no_cause = Error::new(ErrorCode::RaftInternal, "", 0);
        assert_eq!(
            no_cause.to_json(),
            r#"{"errorCode":300,"message":"Raft Internal Error","index":0}"#
        );
    }

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(*c as u32), "duplicate code {}", *c as u32);
            assert_eq!(ErrorCode::from_code(*c as u32), Some(*c));
        }
        assert_eq!(ErrorCode::from_code(999), None);
    }
}
