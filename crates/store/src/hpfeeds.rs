//! hpfeeds broker idents: who may connect to the broker, with which secret, to publish and
//! subscribe on which channels, and which feed their Cowrie sessions are recorded in.
//!
//! Kept in the store (not in a config file) so every hub node on the same data sees the same
//! idents, and so `apiary hpfeeds ident add` takes effect on the next connection.

use crate::model::Timestamp;
use crate::{Result, StoreError};
use serde::Serialize;

/// One ident as stored. The secret is stored readable: the protocol authenticates with
/// `SHA1(nonce ‖ secret)`, so the broker needs it (see docs/hpfeeds.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HpfeedsIdent {
    pub ident: String,
    #[serde(skip_serializing)]
    pub secret: String,
    /// Channels it may publish to (exact names).
    pub publish: Vec<String>,
    /// Channels it may subscribe to (exact names).
    pub subscribe: Vec<String>,
    /// `owner/name` of the feed its `cowrie.sessions` messages are recorded in.
    pub feed: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An ident to create or replace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewHpfeedsIdent {
    pub ident: String,
    pub secret: String,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    /// `owner/name`; the feed must exist.
    pub feed: Option<String>,
}

impl NewHpfeedsIdent {
    /// Check what the wire protocol can carry: idents and channels are 1 to 255 bytes (one
    /// length byte) without control characters; the secret is not empty. Channel lists are
    /// deduplicated, order kept.
    pub fn validated(mut self) -> Result<NewHpfeedsIdent> {
        check_name("ident", &self.ident)?;
        if self.secret.is_empty() {
            return Err(StoreError::Invalid(format!("hpfeeds ident `{}`: the secret is empty", self.ident)));
        }
        for list in [&mut self.publish, &mut self.subscribe] {
            let mut seen = Vec::with_capacity(list.len());
            for c in list.drain(..) {
                check_name("channel", &c)?;
                if !seen.contains(&c) {
                    seen.push(c);
                }
            }
            *list = seen;
        }
        if let Some(f) = &self.feed {
            split_feed(f)?;
        }
        Ok(self)
    }
}

/// `owner/name` → (owner, name).
pub fn split_feed(feed: &str) -> Result<(&str, &str)> {
    match feed.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok((o, n)),
        _ => Err(StoreError::Invalid(format!("feed `{feed}`: expected OWNER/NAME"))),
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "hpfeeds {what} `{name}`: use 1 to 255 bytes with no control characters"
        )));
    }
    Ok(())
}
