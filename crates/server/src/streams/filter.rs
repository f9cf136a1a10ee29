//! Stream filters, shared by the native stream, the firehose and webhooks. Query parameters
//! (and a webhook's stored `filter` object) have these names:
//!
//! - `feeds` (or `feed`): `owner/name`, comma separated; `subscriptions=true`: the caller's
//!   subscribed feeds (with `feeds`, their union);
//! - `itype`: one or more types, comma separated; `tags`: every listed tag must be present;
//! - `confidence` (or `min_confidence`): the publisher's claimed confidence is at least this
//!   (hub scoring does not exist yet; `tier` is accepted and reported as not applied);
//! - `network`: addresses inside any of these CIDRs (comma separated). `asn` is refused until
//!   ASN enrichment exists.

use std::net::IpAddr;

use apiary_bus::LoggedSighting;
use apiary_core::{parse, IType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::intake::parse_tags;
use crate::AppState;

/// Filter parameters as sent (query string or webhook JSON).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct FilterParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feeds: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "loose_string")]
    pub subscriptions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "loose_string")]
    pub confidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "loose_string")]
    pub min_confidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "loose_string")]
    pub asn: Option<String>,
}

/// Accept a JSON number or boolean where a query string would carry text.
fn loose_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// An address range, inclusive, as 128-bit numbers (IPv4 in its own space).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Net {
    v6: bool,
    start: u128,
    end: u128,
}

/// The range of a value already normalised by `apiary_core::parse` (`a.b.c.d[/n]`, RFC 5952).
fn net_of(value: &str) -> Option<Net> {
    let (addr, len) = match value.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
        None => (value, None),
    };
    let (v6, bits, n) = match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => (false, 32u32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, 128u32, u128::from(a)),
    };
    let len = len.unwrap_or(bits).min(bits);
    let host = bits - len;
    let mask = if host == 0 { 0 } else if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
    Some(Net { v6, start: n & !mask, end: n | mask })
}

/// What the events of a stream must match (authorization is checked separately).
#[derive(Debug, Clone, Default)]
pub struct StreamFilter {
    /// Feed names asked for (`owner/name`).
    pub feeds: Vec<String>,
    pub subscriptions: bool,
    pub itypes: Vec<IType>,
    pub tags: Vec<String>,
    pub min_confidence: Option<f64>,
    /// Accepted, not applied (no scoring yet).
    pub tier: Option<String>,
    networks: Vec<Net>,
}

impl StreamFilter {
    /// Check and normalise the parameters; every value goes through the core's parser.
    pub fn parse(p: &FilterParams, state: &AppState) -> Result<StreamFilter, ApiError> {
        let mut f = StreamFilter::default();
        for name in [nonempty(&p.feeds), nonempty(&p.feed)].into_iter().flatten().flat_map(list) {
            if name.split_once('/').is_none_or(|(o, n)| o.is_empty() || n.is_empty()) {
                return Err(ApiError::invalid("invalid_feed", format!("`feeds`: `{name}` is not owner/name")));
            }
            f.feeds.push(name.to_string());
        }
        f.subscriptions = match nonempty(&p.subscriptions) {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") | Some("yes") => true,
            Some(v) => return Err(ApiError::invalid("invalid_subscriptions", format!("`subscriptions` `{v}`: true or false"))),
        };
        if let Some(v) = nonempty(&p.itype) {
            for name in list(v) {
                f.itypes.push(IType::from_name(name).ok_or_else(|| ApiError::invalid("unknown_type", format!("unknown itype `{name}`")))?);
            }
        }
        if let Some(v) = nonempty(&p.tags) {
            f.tags = parse_tags(Value::String(v.to_string())).map_err(|r| ApiError::invalid(r.code, r.message))?;
        }
        if let Some(v) = nonempty(&p.confidence).or(nonempty(&p.min_confidence)) {
            let c = v.parse::<f64>().ok().filter(|c| c.is_finite() && *c >= 0.0);
            f.min_confidence =
                Some(c.ok_or_else(|| ApiError::invalid("invalid_confidence", format!("`confidence` `{v}`: a number of at least 0")))?);
        }
        f.tier = nonempty(&p.tier).map(str::to_string);
        if let Some(v) = nonempty(&p.network) {
            for cidr in list(v) {
                let ind = parse(cidr, None, &state.parse_options)
                    .map_err(|r| ApiError::invalid(r.code.as_str(), format!("`network`: {}", r.message)))?;
                let net = if ind.itype.is_address() { net_of(&ind.value) } else { None };
                f.networks.push(net.ok_or_else(|| ApiError::invalid("type_mismatch", format!("`network`: `{cidr}` is not an address or CIDR")))?);
            }
        }
        if nonempty(&p.asn).is_some() {
            return Err(ApiError::invalid(
                "unsupported_filter",
                "`asn` needs ASN enrichment of sightings, which this hub does not do yet; use `network` with your CIDRs",
            ));
        }
        Ok(f)
    }

    /// Whether it narrows to some feeds (then the stream follows those feeds only).
    pub fn by_feed(&self) -> bool {
        !self.feeds.is_empty() || self.subscriptions
    }

    /// The content filters (feed choice and authorization are applied by the caller).
    pub fn matches(&self, s: &LoggedSighting) -> bool {
        if !self.itypes.is_empty() && !self.itypes.contains(&s.itype) {
            return false;
        }
        if !self.tags.iter().all(|t| s.tags.contains(t)) {
            return false;
        }
        if let Some(min) = self.min_confidence {
            if s.claimed_confidence.is_none_or(|c| c < min) {
                return false;
            }
        }
        if !self.networks.is_empty() {
            let Some(v) = (if s.itype.is_address() { net_of(&s.indicator) } else { None }) else { return false };
            if !self.networks.iter().any(|n| n.v6 == v.v6 && n.start <= v.start && v.end <= n.end) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_addresses_and_smaller_networks() {
        let n = net_of("198.51.100.0/24").unwrap();
        for (v, inside) in [
            ("198.51.100.7", true),
            ("198.51.100.0/25", true),
            ("198.51.101.1", false),
            ("198.51.0.0/16", false),
        ] {
            let x = net_of(v).unwrap();
            assert_eq!(n.start <= x.start && x.end <= n.end, inside, "{v}");
        }
        let v6 = net_of("2001:db8::/32").unwrap();
        let a = net_of("2001:db8:1::5").unwrap();
        assert!(v6.v6 && v6.start <= a.start && a.end <= v6.end);
        assert_eq!(net_of("0.0.0.0/0").unwrap().end, u128::from(u32::MAX));
    }
}
