//! Search keys kept beside each feed record, derived from its canonical value, and the
//! query cursor.
//!
//! The values reaching the store are already canonical (`apiary_core::parse` made them), so
//! these functions only decode that canonical form; they never normalise or second-guess it.

use crate::{Result, StoreError};
use apiary_core::IType;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Index keys of one value: the address range of an ipv4/ipv6 value or CIDR, and the
/// reversed-label key of a host name (an fqdn, or a URL's host).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SearchKeys {
    pub addr_start: Option<Vec<u8>>,
    pub addr_end: Option<Vec<u8>>,
    pub host_key: Option<String>,
}

pub(crate) fn search_keys(itype: IType, value: &str) -> SearchKeys {
    match itype {
        IType::Ipv4 | IType::Ipv6 => match addr_range(value) {
            Some((_, start, end)) => SearchKeys { addr_start: Some(start), addr_end: Some(end), host_key: None },
            None => SearchKeys::default(),
        },
        IType::Fqdn => SearchKeys { host_key: Some(host_key(value)), ..Default::default() },
        IType::Url => match url_host(value) {
            Some(host) if !is_address_literal(host) => SearchKeys { host_key: Some(host_key(host)), ..Default::default() },
            _ => SearchKeys::default(),
        },
        _ => SearchKeys::default(),
    }
}

/// First and last address of a canonical address or CIDR (`198.51.100.0/24`, `2001:db8::/32`),
/// as big-endian bytes (4 for IPv4, 16 for IPv6), with the family's itype.
pub(crate) fn addr_range(value: &str) -> Option<(IType, Vec<u8>, Vec<u8>)> {
    let (addr, prefix) = match value.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u32>().ok()?)),
        None => (value, None),
    };
    if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        let prefix = prefix.unwrap_or(32);
        if prefix > 32 {
            return None;
        }
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        let start = u32::from(v4) & mask;
        let end = start | !mask;
        return Some((IType::Ipv4, start.to_be_bytes().to_vec(), end.to_be_bytes().to_vec()));
    }
    if let Ok(v6) = addr.parse::<Ipv6Addr>() {
        let prefix = prefix.unwrap_or(128);
        if prefix > 128 {
            return None;
        }
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
        let start = u128::from(v6) & mask;
        let end = start | !mask;
        return Some((IType::Ipv6, start.to_be_bytes().to_vec(), end.to_be_bytes().to_vec()));
    }
    None
}

/// `www.example.com` → `com.example.www.`: a domain and all its subdomains then share a
/// key prefix, so "this domain and below" is one index range.
pub(crate) fn host_key(host: &str) -> String {
    let host = host.trim_end_matches('.');
    let mut key = String::with_capacity(host.len() + 1);
    for label in host.rsplit('.') {
        key.push_str(label);
        key.push('.');
    }
    key
}

/// The half-open key range `[lo, hi)` holding a domain and its subdomains.
pub(crate) fn host_key_range(domain: &str) -> (String, String) {
    let lo = host_key(domain);
    // '/' is the byte after '.', so every key starting with `lo` sorts below `hi`.
    let mut hi = lo.clone();
    hi.pop();
    hi.push('/');
    (lo, hi)
}

/// The host of a canonical URL (`scheme://[userinfo@]host[:port][/...]`), without brackets
/// for an IPv6 literal.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(inner) = hostport.strip_prefix('[') {
        &inner[..inner.find(']')?]
    } else {
        hostport.split_once(':').map_or(hostport, |(h, _)| h)
    };
    (!host.is_empty()).then_some(host)
}

fn is_address_literal(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// The position after the last item of a page in the (lasttime desc, id desc) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub lasttime: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(self) -> String {
        hex::encode(format!("r1:{}:{}", self.lasttime, self.id))
    }

    pub fn decode(s: &str) -> Result<Cursor> {
        let bad = || StoreError::Invalid(format!("cursor `{s}` is not one this hub handed out"));
        let raw = String::from_utf8(hex::decode(s).map_err(|_| bad())?).map_err(|_| bad())?;
        let mut parts = raw.split(':');
        if parts.next() != Some("r1") {
            return Err(bad());
        }
        let lasttime = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let id = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Cursor { lasttime, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_ranges() {
        let (t, s, e) = addr_range("198.51.100.0/24").unwrap();
        assert_eq!(t, IType::Ipv4);
        assert_eq!(s, vec![198, 51, 100, 0]);
        assert_eq!(e, vec![198, 51, 100, 255]);
        let (_, s, e) = addr_range("192.0.2.7").unwrap();
        assert_eq!((s.clone(), e), (vec![192, 0, 2, 7], vec![192, 0, 2, 7]));
        let (t, s, e) = addr_range("2001:db8::/32").unwrap();
        assert_eq!(t, IType::Ipv6);
        assert_eq!(&s[..4], &[0x20, 0x01, 0x0d, 0xb8]);
        assert!(s[4..].iter().all(|b| *b == 0));
        assert!(e[4..].iter().all(|b| *b == 0xff));
        let (_, s, e) = addr_range("0.0.0.0/0").unwrap();
        assert_eq!((s, e), (vec![0; 4], vec![255; 4]));
        assert!(addr_range("example.com").is_none());
        assert!(addr_range("10.0.0.0/33").is_none());
    }

    #[test]
    fn host_keys_and_ranges() {
        assert_eq!(host_key("www.example.com"), "com.example.www.");
        assert_eq!(host_key("example.com."), "com.example.");
        let (lo, hi) = host_key_range("example.com");
        for inside in ["example.com", "www.example.com", "a.b.example.com"] {
            let k = host_key(inside);
            assert!(k >= lo && k < hi, "{inside} should be within example.com");
        }
        for outside in ["badexample.com", "example.comx", "example.org", "com"] {
            let k = host_key(outside);
            assert!(!(k >= lo && k < hi), "{outside} should not be within example.com");
        }
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("http://a.example/x?y"), Some("a.example"));
        assert_eq!(url_host("https://user:pw@b.example:8443/"), Some("b.example"));
        assert_eq!(url_host("http://[2001:db8::1]:8080/p"), Some("2001:db8::1"));
        assert_eq!(url_host("http://192.0.2.1"), Some("192.0.2.1"));
        assert_eq!(url_host("no-scheme"), None);
        assert_eq!(
            search_keys(IType::Url, "http://www.example.com/a").host_key.as_deref(),
            Some("com.example.www.")
        );
        assert_eq!(search_keys(IType::Url, "http://192.0.2.1/a"), SearchKeys::default());
    }

    #[test]
    fn cursor_round_trip_and_rejects_garbage() {
        let c = Cursor { lasttime: 1_620_000_000_000_000, id: 42 };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("zz").is_err());
        assert!(Cursor::decode(&hex::encode("r1:1")).is_err());
        assert!(Cursor::decode(&hex::encode("r2:1:2")).is_err());
    }
}
