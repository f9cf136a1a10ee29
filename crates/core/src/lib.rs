//! Apiary's domain core: the single place where an indicator is understood.
//!
//! Pipeline stage: **normalise**. Everything upstream (API publishes, Cowrie logs, feed files)
//! hands raw strings to [`parse`]; everything downstream (store, scoring, exports) sees only
//! [`Indicator`]s. This crate does no I/O: no files, no network, no database.

mod addr;
pub mod allowlist;
pub mod enrich;
pub mod error;
pub mod export;
mod host;
pub mod indicator;
pub mod itype;
pub mod normalise;
pub mod sessions;
pub mod special;
pub mod time;
pub mod limits;
pub mod trust;

pub use allowlist::{Allowlist, ListKind, ListUse, Listed, WarningList};
pub use error::{RejectCode, Rejection};
pub use indicator::{Derived, Flag, Indicator};
pub use itype::IType;
pub use normalise::{parse, ParseOptions};
pub use special::Reserved;
pub use time::{check_reported_time, format_time, parse_time};
