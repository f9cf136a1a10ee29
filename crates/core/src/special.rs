//! Special-use address classification (IANA IPv4/IPv6 special-purpose registries).

use serde::Serialize;

/// Why an address is special-use. Such values are stored but never exported to blocklists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reserved {
    Unspecified,
    ThisNetwork,
    Private,
    Loopback,
    LinkLocal,
    Documentation,
    Cgnat,
    Multicast,
    Benchmarking,
    Broadcast,
    Reserved,
    IetfProtocol,
    UniqueLocal,
    Translation,
    Discard,
    Teredo,
    SixToFour,
}

impl Reserved {
    pub fn as_str(self) -> &'static str {
        match self {
            Reserved::Unspecified => "unspecified",
            Reserved::ThisNetwork => "this_network",
            Reserved::Private => "private",
            Reserved::Loopback => "loopback",
            Reserved::LinkLocal => "link_local",
            Reserved::Documentation => "documentation",
            Reserved::Cgnat => "cgnat",
            Reserved::Multicast => "multicast",
            Reserved::Benchmarking => "benchmarking",
            Reserved::Broadcast => "broadcast",
            Reserved::Reserved => "reserved",
            Reserved::IetfProtocol => "ietf_protocol",
            Reserved::UniqueLocal => "unique_local",
            Reserved::Translation => "translation",
            Reserved::Discard => "discard",
            Reserved::Teredo => "teredo",
            Reserved::SixToFour => "6to4",
        }
    }
}

/// Classify an IPv4 address.
pub fn classify_v4(addr: std::net::Ipv4Addr) -> Option<Reserved> {
    let _ = addr;
    todo!()
}

/// Classify an IPv6 address.
pub fn classify_v6(addr: std::net::Ipv6Addr) -> Option<Reserved> {
    let _ = addr;
    todo!()
}
