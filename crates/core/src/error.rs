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
}

impl RejectCode {
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
