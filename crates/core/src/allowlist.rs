//! Allowlists in the MISP warninglist format, used to *exclude* or to *hold*.

use crate::{Indicator, Rejection};
use serde::Serialize;

/// How a loaded list is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListUse {
    /// Never scored, never exported (special-use ranges, sinkholes, public resolvers, ...).
    Exclude,
    /// Kept and flagged; out of blocklists until a trusted source confirms (CDNs, clouds, shorteners).
    Hold,
}

/// One match of an indicator against a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The list's name.
    pub list: String,
    #[serde(rename = "use")]
    pub use_: ListUse,
    /// True when the indicator is a CIDR that *contains* a listed range (never exported whole).
    pub overlaps: bool,
}

/// A set of loaded lists with fast lookup.
#[derive(Debug, Default, Clone)]
pub struct Allowlist {}

impl Allowlist {
    /// The built-in defaults (special-use ranges, the big public resolvers, special-use names).
    pub fn builtin() -> Allowlist {
        todo!()
    }

    /// Add one MISP warninglist given as JSON text. Invalid entries reject the load with their index.
    pub fn add_warninglist_json(&mut self, json: &str, use_: ListUse) -> Result<(), Rejection> {
        let _ = (json, use_);
        todo!()
    }

    /// Which lists an indicator matches.
    pub fn check(&self, ind: &Indicator) -> Vec<Listed> {
        let _ = ind;
        todo!()
    }
}
