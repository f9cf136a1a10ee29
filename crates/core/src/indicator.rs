//! The one indicator model.

use crate::{IType, Reserved};
use serde::Serialize;

/// A normalised indicator: one real-world thing has exactly one `(itype, value)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Indicator {
    pub itype: IType,
    /// The canonical stored form (e.g. `198.51.100.7`, `203.0.113.0/24`, `https://a.example/x`).
    pub value: String,
    /// A port given with the value (`ip:port`, `ip|port`, `[v6]:port`, or a URL's explicit non-default port).
    pub port: Option<u16>,
    /// Indicators implied by this one (a URL's host as fqdn/ipv4/ipv6; an e-mail's domain).
    pub derived: Vec<Derived>,
    /// Special-use classification of an address (or a URL/e-mail host address), if any.
    pub reserved: Option<Reserved>,
    /// What normalising did or noticed (`host_bits_masked`, `mapped`, `refanged`, ...).
    pub flags: Vec<Flag>,
}

/// An indicator derived from another (a URL's host, for example).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Derived {
    pub itype: IType,
    pub value: String,
}

/// Notes attached by the normaliser. Codes are short snake_case words, listed in docs/codes.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The input was defanged (`hxxp`, `[.]`, ...) and was refanged.
    Refanged,
    /// A CIDR had host bits set; they were masked off.
    HostBitsMasked,
    /// An IPv4-mapped IPv6 address or CIDR became its IPv4 form.
    Mapped,
    /// An IDN (Unicode) name was converted to its punycode A-label.
    Idn,
    /// A CIDR value (as opposed to a single address).
    Cidr,
    /// IPv4 octets had leading zeros (read as decimal).
    LeadingZeros,
    /// A URL had no scheme (`example.com/path`); `http://` was assumed.
    SchemeAdded,
}

impl Flag {
    /// Every flag, for documentation and tests.
    pub const ALL: [Flag; 7] = [
        Flag::Refanged,
        Flag::HostBitsMasked,
        Flag::Mapped,
        Flag::Idn,
        Flag::Cidr,
        Flag::LeadingZeros,
        Flag::SchemeAdded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Refanged => "refanged",
            Flag::HostBitsMasked => "host_bits_masked",
            Flag::Mapped => "mapped",
            Flag::Idn => "idn",
            Flag::Cidr => "cidr",
            Flag::LeadingZeros => "leading_zeros",
            Flag::SchemeAdded => "scheme_added",
        }
    }
}

impl Indicator {
    /// True when the value is a CIDR (contains a prefix length).
    pub fn is_cidr(&self) -> bool {
        self.itype.is_address() && self.value.contains('/')
    }
}
