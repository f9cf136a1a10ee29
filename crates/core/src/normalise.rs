//! Parse and normalise one raw value into an [`Indicator`].

use crate::{IType, Indicator, Rejection};

/// Limits and policy for [`parse`].
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Values longer than this many bytes are rejected (never truncated). Default 4096.
    pub max_len: usize,
    /// Shortest accepted IPv4 prefix. Default 8.
    pub min_prefix_v4: u8,
    /// Shortest accepted IPv6 prefix. Default 32.
    pub min_prefix_v6: u8,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { max_len: 4096, min_prefix_v4: 8, min_prefix_v6: 32 }
    }
}

/// Parse `input`, detecting its type (or checking it against `hint`), and normalise it.
pub fn parse(input: &str, hint: Option<IType>, opts: &ParseOptions) -> Result<Indicator, Rejection> {
    let _ = (input, hint, opts);
    todo!("implemented by the core work")
}
