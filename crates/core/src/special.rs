//! Special-use address classification (IANA IPv4/IPv6 special-purpose registries).
//!
//! The tables follow the IANA "IPv4 Special-Purpose Address Registry" and "IPv6 Special-Purpose
//! Address Registry", plus the multicast blocks and, for IPv6, everything outside the global
//! unicast space `2000::/3` (reserved by the IETF). Nested entries come before their parents so
//! the first match is the most specific one.

use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};

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
    #[serde(rename = "6to4")]
    SixToFour,
    /// AS112 anycast DNS sinks for private reverse zones (RFC 7534, RFC 7535).
    As112,
    /// Automatic Multicast Tunneling relays (RFC 7450).
    Amt,
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
            Reserved::As112 => "as112",
            Reserved::Amt => "amt",
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [Reserved; 19] = [
        Reserved::Unspecified,
        Reserved::ThisNetwork,
        Reserved::Private,
        Reserved::Loopback,
        Reserved::LinkLocal,
        Reserved::Documentation,
        Reserved::Cgnat,
        Reserved::Multicast,
        Reserved::Benchmarking,
        Reserved::Broadcast,
        Reserved::Reserved,
        Reserved::IetfProtocol,
        Reserved::UniqueLocal,
        Reserved::Translation,
        Reserved::Discard,
        Reserved::Teredo,
        Reserved::SixToFour,
        Reserved::As112,
        Reserved::Amt,
    ];
}

impl std::fmt::Display for Reserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One special-purpose IPv4 block.
#[derive(Debug, Clone, Copy)]
pub struct SpecialV4 {
    pub net: u32,
    pub len: u8,
    pub reserved: Reserved,
    /// The registry's name for the block and its RFC.
    pub name: &'static str,
}

/// One special-purpose IPv6 block.
#[derive(Debug, Clone, Copy)]
pub struct SpecialV6 {
    pub net: u128,
    pub len: u8,
    pub reserved: Reserved,
    pub name: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

const fn v6(s: [u16; 8]) -> u128 {
    let mut r: u128 = 0;
    let mut i = 0;
    while i < 8 {
        r = (r << 16) | s[i] as u128;
        i += 1;
    }
    r
}

/// IANA IPv4 special-purpose blocks plus multicast, most specific first.
pub const IPV4_SPECIAL: &[SpecialV4] = &[
    SpecialV4 { net: v4(0, 0, 0, 0), len: 32, reserved: Reserved::Unspecified, name: "unspecified address (RFC 1122)" },
    SpecialV4 { net: v4(0, 0, 0, 0), len: 8, reserved: Reserved::ThisNetwork, name: "\"this network\" (RFC 791)" },
    SpecialV4 { net: v4(10, 0, 0, 0), len: 8, reserved: Reserved::Private, name: "private-use (RFC 1918)" },
    SpecialV4 { net: v4(100, 64, 0, 0), len: 10, reserved: Reserved::Cgnat, name: "shared address space (RFC 6598)" },
    SpecialV4 { net: v4(127, 0, 0, 0), len: 8, reserved: Reserved::Loopback, name: "loopback (RFC 1122)" },
    SpecialV4 { net: v4(169, 254, 0, 0), len: 16, reserved: Reserved::LinkLocal, name: "link local (RFC 3927)" },
    SpecialV4 { net: v4(172, 16, 0, 0), len: 12, reserved: Reserved::Private, name: "private-use (RFC 1918)" },
    SpecialV4 { net: v4(192, 0, 0, 0), len: 24, reserved: Reserved::IetfProtocol, name: "IETF protocol assignments (RFC 6890; DS-Lite, PCP/TURN anycast, NAT64 discovery)" },
    SpecialV4 { net: v4(192, 0, 2, 0), len: 24, reserved: Reserved::Documentation, name: "documentation TEST-NET-1 (RFC 5737)" },
    SpecialV4 { net: v4(192, 31, 196, 0), len: 24, reserved: Reserved::As112, name: "AS112-v4 (RFC 7535)" },
    SpecialV4 { net: v4(192, 52, 193, 0), len: 24, reserved: Reserved::Amt, name: "AMT (RFC 7450)" },
    SpecialV4 { net: v4(192, 88, 99, 0), len: 24, reserved: Reserved::SixToFour, name: "deprecated 6to4 relay anycast (RFC 7526)" },
    SpecialV4 { net: v4(192, 168, 0, 0), len: 16, reserved: Reserved::Private, name: "private-use (RFC 1918)" },
    SpecialV4 { net: v4(192, 175, 48, 0), len: 24, reserved: Reserved::As112, name: "direct delegation AS112 service (RFC 7534)" },
    SpecialV4 { net: v4(198, 18, 0, 0), len: 15, reserved: Reserved::Benchmarking, name: "benchmarking (RFC 2544)" },
    SpecialV4 { net: v4(198, 51, 100, 0), len: 24, reserved: Reserved::Documentation, name: "documentation TEST-NET-2 (RFC 5737)" },
    SpecialV4 { net: v4(203, 0, 113, 0), len: 24, reserved: Reserved::Documentation, name: "documentation TEST-NET-3 (RFC 5737)" },
    SpecialV4 { net: v4(224, 0, 0, 0), len: 4, reserved: Reserved::Multicast, name: "multicast (RFC 5771)" },
    SpecialV4 { net: v4(255, 255, 255, 255), len: 32, reserved: Reserved::Broadcast, name: "limited broadcast (RFC 919)" },
    SpecialV4 { net: v4(240, 0, 0, 0), len: 4, reserved: Reserved::Reserved, name: "reserved for future use (RFC 1112)" },
];

/// IANA IPv6 special-purpose blocks plus multicast and the non-global-unicast space, most
/// specific first. IPv4-mapped addresses (`::ffff:0:0/96`) are classified by their IPv4 address.
pub const IPV6_SPECIAL: &[SpecialV6] = &[
    SpecialV6 { net: 0, len: 128, reserved: Reserved::Unspecified, name: "unspecified address (RFC 4291)" },
    SpecialV6 { net: 1, len: 128, reserved: Reserved::Loopback, name: "loopback (RFC 4291)" },
    SpecialV6 { net: v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), len: 48, reserved: Reserved::Translation, name: "IPv4-IPv6 local-use translation (RFC 8215)" },
    SpecialV6 { net: v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), len: 96, reserved: Reserved::Translation, name: "IPv4-IPv6 translation (RFC 6052)" },
    SpecialV6 { net: v6([0x100, 0, 0, 0, 0, 0, 0, 0]), len: 64, reserved: Reserved::Discard, name: "discard-only (RFC 6666)" },
    SpecialV6 { net: v6([0x100, 0, 0, 1, 0, 0, 0, 0]), len: 64, reserved: Reserved::Reserved, name: "dummy IPv6 prefix (RFC 9780)" },
    SpecialV6 { net: v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), len: 32, reserved: Reserved::Teredo, name: "TEREDO (RFC 4380)" },
    SpecialV6 { net: v6([0x2001, 2, 0, 0, 0, 0, 0, 0]), len: 48, reserved: Reserved::Benchmarking, name: "benchmarking (RFC 5180)" },
    SpecialV6 { net: v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0]), len: 48, reserved: Reserved::As112, name: "AS112-v6 (RFC 7535)" },
    SpecialV6 { net: v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), len: 23, reserved: Reserved::IetfProtocol, name: "IETF protocol assignments (RFC 2928; PCP/TURN/DNS-SD anycast, AMT, ORCHIDv2, drone remote ID)" },
    SpecialV6 { net: v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), len: 32, reserved: Reserved::Documentation, name: "documentation (RFC 3849)" },
    SpecialV6 { net: v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), len: 20, reserved: Reserved::Documentation, name: "documentation (RFC 9637)" },
    SpecialV6 { net: v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), len: 16, reserved: Reserved::SixToFour, name: "6to4 (RFC 3056)" },
    SpecialV6 { net: v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0]), len: 48, reserved: Reserved::As112, name: "direct delegation AS112 service (RFC 7534)" },
    SpecialV6 { net: v6([0x5f00, 0, 0, 0, 0, 0, 0, 0]), len: 16, reserved: Reserved::Reserved, name: "segment routing SIDs (RFC 9602)" },
    SpecialV6 { net: v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), len: 7, reserved: Reserved::UniqueLocal, name: "unique-local (RFC 4193)" },
    SpecialV6 { net: v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), len: 10, reserved: Reserved::LinkLocal, name: "link-local unicast (RFC 4291)" },
    SpecialV6 { net: v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), len: 8, reserved: Reserved::Multicast, name: "multicast (RFC 4291)" },
];

/// First octets that start at least one special block: a public address is answered by one
/// bit test.
const V4_FIRST_OCTET: [u64; 4] = {
    let mut bits = [0u64; 4];
    let mut i = 0;
    while i < IPV4_SPECIAL.len() {
        let e = IPV4_SPECIAL[i];
        let first = (e.net >> 24) as usize;
        // A block shorter than /8 spans several first octets.
        let span = if e.len >= 8 { 1 } else { 1usize << (8 - e.len) };
        let mut j = 0;
        while j < span {
            let o = first + j;
            bits[o / 64] |= 1 << (o % 64);
            j += 1;
        }
        i += 1;
    }
    bits
};

#[inline]
pub(crate) fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

#[inline]
pub(crate) fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

/// Classify an IPv4 address.
pub fn classify_v4(addr: Ipv4Addr) -> Option<Reserved> {
    classify_v4_net(u32::from(addr), 32)
}

/// Classify an IPv4 network: `Some` only when the whole network lies inside one special block.
pub fn classify_v4_net(net: u32, len: u8) -> Option<Reserved> {
    let o = (net >> 24) as usize;
    if V4_FIRST_OCTET[o / 64] & (1 << (o % 64)) == 0 {
        return None;
    }
    IPV4_SPECIAL
        .iter()
        .find(|e| e.len <= len && net & mask_v4(e.len) == e.net)
        .map(|e| e.reserved)
}

/// Classify an IPv6 address.
pub fn classify_v6(addr: Ipv6Addr) -> Option<Reserved> {
    classify_v6_net(u128::from(addr), 128)
}

/// Classify an IPv6 network: `Some` only when the whole network lies inside one special block.
pub fn classify_v6_net(net: u128, len: u8) -> Option<Reserved> {
    const MAPPED: u128 = 0xffff_0000_0000;
    if len >= 96 && net >> 32 == MAPPED >> 32 {
        return classify_v4_net(net as u32, len - 96);
    }
    if let Some(e) = IPV6_SPECIAL.iter().find(|e| e.len <= len && net & mask_v6(e.len) == e.net) {
        return Some(e.reserved);
    }
    // Outside the global unicast space 2000::/3, everything is reserved by the IETF.
    if len >= 3 && net >> 125 != 0b001 {
        return Some(Reserved::Reserved);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c4(s: &str) -> Option<Reserved> {
        classify_v4(s.parse().unwrap())
    }
    fn c6(s: &str) -> Option<Reserved> {
        classify_v6(s.parse().unwrap())
    }

    #[test]
    fn ipv4_table() {
        let cases = [
            ("0.0.0.0", Some(Reserved::Unspecified)),
            ("0.1.2.3", Some(Reserved::ThisNetwork)),
            ("10.9.8.7", Some(Reserved::Private)),
            ("100.64.0.1", Some(Reserved::Cgnat)),
            ("100.128.0.1", None),
            ("127.0.0.1", Some(Reserved::Loopback)),
            ("169.254.1.1", Some(Reserved::LinkLocal)),
            ("172.31.255.255", Some(Reserved::Private)),
            ("172.32.0.0", None),
            ("192.0.0.9", Some(Reserved::IetfProtocol)),
            ("192.0.2.1", Some(Reserved::Documentation)),
            ("192.31.196.1", Some(Reserved::As112)),
            ("192.52.193.1", Some(Reserved::Amt)),
            ("192.88.99.1", Some(Reserved::SixToFour)),
            ("192.168.31.210", Some(Reserved::Private)),
            ("192.175.48.6", Some(Reserved::As112)),
            ("198.19.255.255", Some(Reserved::Benchmarking)),
            ("198.20.0.0", None),
            ("198.51.100.7", Some(Reserved::Documentation)),
            ("203.0.113.77", Some(Reserved::Documentation)),
            ("224.0.0.251", Some(Reserved::Multicast)),
            ("239.255.255.250", Some(Reserved::Multicast)),
            ("240.0.0.1", Some(Reserved::Reserved)),
            ("255.255.255.255", Some(Reserved::Broadcast)),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("223.255.255.255", None),
        ];
        for (a, want) in cases {
            assert_eq!(c4(a), want, "{a}");
        }
    }

    #[test]
    fn ipv6_table() {
        let cases = [
            ("::", Some(Reserved::Unspecified)),
            ("::1", Some(Reserved::Loopback)),
            ("::ffff:10.0.0.1", Some(Reserved::Private)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", Some(Reserved::Translation)),
            ("100::1", Some(Reserved::Discard)),
            ("2001::1", Some(Reserved::Teredo)),
            ("2001:2::1", Some(Reserved::Benchmarking)),
            ("2001:1::1", Some(Reserved::IetfProtocol)),
            ("2001:db8::1", Some(Reserved::Documentation)),
            ("3fff::1", Some(Reserved::Documentation)),
            ("2002:c000:204::1", Some(Reserved::SixToFour)),
            ("fd00::1", Some(Reserved::UniqueLocal)),
            ("fe80::1", Some(Reserved::LinkLocal)),
            ("ff02::1", Some(Reserved::Multicast)),
            ("fec0::1", Some(Reserved::Reserved)),
            ("2001:4860:4860::8888", None),
            ("2a00:1450::1", None),
        ];
        for (a, want) in cases {
            assert_eq!(c6(a), want, "{a}");
        }
    }

    #[test]
    fn networks_only_when_wholly_inside() {
        assert_eq!(classify_v4_net(u32::from_be_bytes([10, 1, 0, 0]), 16), Some(Reserved::Private));
        // 10.0.0.0/7 also covers public 11.0.0.0/8.
        assert_eq!(classify_v4_net(u32::from_be_bytes([10, 0, 0, 0]), 7), None);
        assert_eq!(classify_v4_net(0, 8), Some(Reserved::ThisNetwork));
    }
}
