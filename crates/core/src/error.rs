//! Typed rejections: every refused value says why.

use serde::Serialize;

/// Why a value was rejected. Codes are listed in docs/codes.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    Empty,
    TooLong,
    UnknownType,
    TypeMismatch,
    InvalidAddress,
    PrefixTooShort,
    InvalidPrefix,
    InvalidDomain,
    InvalidIdn,
    InvalidUrl,
    InvalidEmail,
    BadHashLength,
    InvalidAsn,
    InvalidPort,
    InvalidTime,
    TimeOutOfRange,
    /// An allowlist (warninglist) could not be loaded: bad JSON or an invalid entry.
    InvalidAllowlist,
}

impl RejectCode {
    /// Every code, for documentation and tests.
    pub const ALL: [RejectCode; 17] = [
        RejectCode::Empty,
        RejectCode::TooLong,
        RejectCode::UnknownType,
        RejectCode::TypeMismatch,
        RejectCode::InvalidAddress,
        RejectCode::PrefixTooShort,
        RejectCode::InvalidPrefix,
        RejectCode::InvalidDomain,
        RejectCode::InvalidIdn,
        RejectCode::InvalidUrl,
        RejectCode::InvalidEmail,
        RejectCode::BadHashLength,
        RejectCode::InvalidAsn,
        RejectCode::InvalidPort,
        RejectCode::InvalidTime,
        RejectCode::TimeOutOfRange,
        RejectCode::InvalidAllowlist,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Empty => "empty",
            RejectCode::TooLong => "too_long",
            RejectCode::UnknownType => "unknown_type",
            RejectCode::TypeMismatch => "type_mismatch",
            RejectCode::InvalidAddress => "invalid_address",
            RejectCode::PrefixTooShort => "prefix_too_short",
            RejectCode::InvalidPrefix => "invalid_prefix",
            RejectCode::InvalidDomain => "invalid_domain",
            RejectCode::InvalidIdn => "invalid_idn",
            RejectCode::InvalidUrl => "invalid_url",
            RejectCode::InvalidEmail => "invalid_email",
            RejectCode::BadHashLength => "bad_hash_length",
            RejectCode::InvalidAsn => "invalid_asn",
            RejectCode::InvalidPort => "invalid_port",
            RejectCode::InvalidTime => "invalid_time",
            RejectCode::TimeOutOfRange => "time_out_of_range",
            RejectCode::InvalidAllowlist => "invalid_allowlist",
        }
    }
}

/// A rejected value: a code for machines, a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub code: RejectCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Rejection { code, message: message.into() }
    }
}
