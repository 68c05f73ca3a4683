//! The one error type of etcdrs. `code()` is etcd's v2 errorCode for etcd errors; codes from
//! 1000 up are etcdrs's own and are never renumbered (the C ABI and bindings expose them).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The error table: one row per code, `Name = number, HTTP status, "message";`. It makes
/// the `ErrorCode` enum, `ErrorCode::ALL`, `message()` and `http_status()`; the C header's
/// `etcdrs_code` is generated from these rows too (ffi/build.rs reads them), and the Python
/// package reads the codes from the core (`etcdrs._native.ERROR_CODES`). A later column can
/// carry the gRPC status of v3 errors.
macro_rules! error_table {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $status:literal, $message:literal; )*) => {
        /// etcd's v2 error codes (api/v2error) plus etcdrs library codes from 1000 up.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum ErrorCode {
            $( $(#[$doc])* $name = $code, )*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// etcd's message text for the code (v2error's table, verbatim), or etcdrs's.
            pub fn message(self) -> &'static str {
                match self { $(ErrorCode::$name => $message,)* }
            }

            /// The HTTP status etcd answers with for this code (400 where etcd has none).
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$name => $status,)* }
            }

            /// The code's name, as the bindings know it.
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }
        }
    };
}

error_table! {
    // etcd's v2 table, complete: the HTTP client decodes these from any etcd member.
    KeyNotFound = 100, 404, "Key not found";
    TestFailed = 101, 412, "Compare failed";
    NotFile = 102, 403, "Not a file";
    NoMorePeer = 103, 400, "Reached the max number of peers in the cluster";
    NotDir = 104, 400, "Not a directory";
    NodeExist = 105, 412, "Key already exists";
    KeyIsPreserved = 106, 400, "The prefix of given key is a keyword in etcd";
    RootReadOnly = 107, 400, "Root is read only";
    DirNotEmpty = 108, 403, "Directory not empty";
    ExistingPeerAddr = 109, 409, "Peer address has existed";
    Unauthorized = 110, 401, "The request requires user authentication";

    ValueRequired = 200, 400, "Value is Required in POST form";
    PrevValueRequired = 201, 400, "PrevValue is Required in POST form";
    TtlNan = 202, 400, "The given TTL in POST form is not a number";
    IndexNan = 203, 400, "The given index in POST form is not a number";
    ValueOrTtlRequired = 204, 400, "Value or TTL is required in POST form";
    TimeoutNan = 205, 400, "The given timeout in POST form is not a number";
    NameRequired = 206, 400, "Name is required in POST form";
    IndexOrValueRequired = 207, 400, "Index or value is required";
    IndexValueMutex = 208, 400, "Index and value cannot both be specified";
    InvalidField = 209, 400, "Invalid field";
    InvalidForm = 210, 400, "Invalid POST form";
    RefreshValue = 211, 400, "Value provided on refresh";
    RefreshTtlRequired = 212, 400, "A TTL must be provided on refresh";

    RaftInternal = 300, 500, "Raft Internal Error";
    LeaderElect = 301, 500, "During Leader Election";

    WatcherCleared = 400, 400, "watcher is cleared due to etcd recovery";
    EventIndexCleared = 401, 400, "The event in requested index is outdated and cleared";

    // etcdrs library codes: never renumber, only append.
    /// A required pointer was NULL (raised by the C ABI).
    NullArgument = 1000, 400, "Null argument";
    /// Text that is not UTF-8 (raised by the C ABI).
    InvalidUtf8 = 1001, 400, "Invalid UTF-8";
    ConnectionFailed = 1002, 503, "Connection failed";
    Timeout = 1003, 503, "Timed out";
    /// A bug inside the library, caught before it crossed a thread or the C ABI.
    Panic = 1005, 500, "Internal panic";
    Io = 1006, 500, "I/O error";
    InvalidConfig = 1007, 400, "Invalid configuration";
    BadResponse = 1008, 500, "Bad response from server";
    /// A watch cancelled by its owner (raised by the C ABI).
    Cancelled = 1009, 400, "Cancelled";
    Stopped = 1010, 503, "Member stopped";
    Corrupt = 1011, 500, "Data corrupt";
    InvalidArgument = 1012, 400, "Invalid argument";
    NotLeader = 1013, 403, "not current leader";
    MemberNotFound = 1014, 404, "No such member";
    MemberRemoved = 1015, 410, "Member permanently removed";
}

impl ErrorCode {
    pub fn from_code(code: u32) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| *c as u32 == code)
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
        crate::go_json::to_string(&ErrorJson::from(self))
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

/// gRPC status codes etcd's v3 errors travel with (google.golang.org/grpc/codes).
pub mod grpc_code {
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const DATA_LOSS: i32 = 15;
    pub const UNAUTHENTICATED: i32 = 16;
}

macro_rules! v3_error_table {
    ($( $(#[$doc:meta])* $name:ident = $grpc:ident, $message:literal; )*) => {
        /// etcd's v3 errors (api/v3rpc/rpctypes): a gRPC status code and etcd's exact
        /// message, which Go clients map back to their error values by text.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum V3Error {
            $( $(#[$doc])* $name, )*
            /// The member's v3 store failed (its backend); the member stops serving.
            Backend(String),
            /// Any other failure, with its text.
            Internal(String),
        }

        impl V3Error {
            pub fn grpc_code(&self) -> i32 {
                match self {
                    $(V3Error::$name => grpc_code::$grpc,)*
                    V3Error::Backend(_) => grpc_code::DATA_LOSS,
                    V3Error::Internal(_) => grpc_code::INTERNAL,
                }
            }

            pub fn message(&self) -> std::borrow::Cow<'static, str> {
                match self {
                    $(V3Error::$name => $message.into(),)*
                    V3Error::Backend(m) | V3Error::Internal(m) => m.clone().into(),
                }
            }

            /// The error a gRPC status stands for, by etcd's message alone (as etcd's Go
            /// client maps them back: the Lock and Election services pass the errors of
            /// their own calls on with code UNKNOWN); any other text stays as it is.
            pub fn from_status(code: i32, message: &str) -> V3Error {
                $(if message == $message {
                    return V3Error::$name;
                })*
                if code == grpc_code::DATA_LOSS {
                    return V3Error::Backend(message.to_string());
                }
                V3Error::Internal(message.to_string())
            }
        }
    };
}

v3_error_table! {
    EmptyKey = INVALID_ARGUMENT, "etcdserver: key is not provided";
    KeyNotFound = INVALID_ARGUMENT, "etcdserver: key not found";
    ValueProvided = INVALID_ARGUMENT, "etcdserver: value is provided";
    LeaseProvided = INVALID_ARGUMENT, "etcdserver: lease is provided";
    TooManyOps = INVALID_ARGUMENT, "etcdserver: too many operations in txn request";
    DuplicateKey = INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request";
    Compacted = OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted";
    FutureRev = OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision";
    NoSpace = RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded";
    LeaseNotFound = NOT_FOUND, "etcdserver: requested lease not found";
    LeaseExist = FAILED_PRECONDITION, "etcdserver: lease already exists";
    LeaseTtlTooLarge = OUT_OF_RANGE, "etcdserver: too large lease TTL";
    RequestTooLarge = INVALID_ARGUMENT, "etcdserver: request is too large";
    NoLeader = UNAVAILABLE, "etcdserver: no leader";
    NotLeader = FAILED_PRECONDITION, "etcdserver: not leader";
    Stopped = UNAVAILABLE, "etcdserver: server stopped";
    Timeout = UNAVAILABLE, "etcdserver: request timed out";
    MemberNotFound = NOT_FOUND, "etcdserver: member not found";
    PeerUrlExist = FAILED_PRECONDITION, "etcdserver: Peer URLs already exists";
    MemberBadUrls = INVALID_ARGUMENT, "etcdserver: given member URLs are invalid";
    RootUserNotExist = FAILED_PRECONDITION, "etcdserver: root user does not exist";
    RootRoleNotExist = FAILED_PRECONDITION, "etcdserver: root user does not have root role";
    UserAlreadyExist = FAILED_PRECONDITION, "etcdserver: user name already exists";
    UserEmpty = INVALID_ARGUMENT, "etcdserver: user name is empty";
    UserNotFound = FAILED_PRECONDITION, "etcdserver: user name not found";
    RoleAlreadyExist = FAILED_PRECONDITION, "etcdserver: role name already exists";
    RoleNotFound = FAILED_PRECONDITION, "etcdserver: role name not found";
    RoleEmpty = INVALID_ARGUMENT, "etcdserver: role name is empty";
    AuthFailed = INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password";
    PermissionDenied = PERMISSION_DENIED, "etcdserver: permission denied";
    RoleNotGranted = FAILED_PRECONDITION, "etcdserver: role is not granted to the user";
    PermissionNotGranted = FAILED_PRECONDITION, "etcdserver: permission is not granted to the role";
    AuthNotEnabled = FAILED_PRECONDITION, "etcdserver: authentication is not enabled";
    InvalidAuthToken = UNAUTHENTICATED, "etcdserver: invalid auth token";
    InvalidAuthMgmt = INVALID_ARGUMENT, "etcdserver: invalid auth management";
    AuthOldRevision = INVALID_ARGUMENT, "etcdserver: revision of auth store is old";
    /// The Election service's (etcd passes its concurrency package's errors through).
    ElectionNoLeader = UNKNOWN, "election: no leader";
    ElectionNotLeader = UNKNOWN, "election: not leader";
    MissingLeaderKey = UNKNOWN, "\"leader\" field must be provided";
    /// etcdrs's own: a client at --max-long-polls-per-client (etcd has no such cap).
    TooManyStreams = RESOURCE_EXHAUSTED, "etcdserver: too many open streams from this client";
}

impl fmt::Display for V3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for V3Error {}

/// A member-level failure as a v3 client sees it.
impl From<Error> for V3Error {
    fn from(e: Error) -> V3Error {
        match e.code {
            ErrorCode::Stopped | ErrorCode::MemberRemoved => V3Error::Stopped,
            ErrorCode::RaftInternal if e.cause == "etcdserver: request timed out" => {
                V3Error::Timeout
            }
            ErrorCode::Corrupt => V3Error::Backend(e.cause),
            ErrorCode::MemberNotFound => V3Error::MemberNotFound,
            ErrorCode::ExistingPeerAddr => V3Error::PeerUrlExist,
            _ => V3Error::Internal(format!("etcdserver: {}", e.cause)),
        }
    }
}

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
