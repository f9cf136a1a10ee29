//! Stream filters, shared by the native stream, the firehose and webhooks. Query parameters
//! (and a webhook's stored `filter` object) have these names:
//!
//! - `feeds` (or `feed`): `owner/name`, comma separated; `subscriptions=true`: the caller's
//!   subscribed feeds (with `feeds`, their union);
//! - `itype`: one or more types, comma separated; `tags`: every listed tag must be present;
//! - `confidence` (or `min_confidence`): the publisher's claimed confidence is at least this;
//! - `tier`: `observe`, `suspicious` or `block` (any case), checked and refused otherwise, but
//!   not applied to streams yet (the opening comment of an SSE stream says so);
//! - `cidr` (or `network`): addresses inside any of these CIDRs or addresses, IPv4 or IPv6
//!   (comma separated);
//! - `asn`: addresses whose AS number, from the hub's IP-to-ASN tables (`--asn-db`), is one of
//!   these (`64500` or `AS64500`, comma separated); refused when the hub has no tables.
//!
//! With `cidr` or `asn`, only values that are addresses pass, and URLs whose host is an
//! address that matches (`http://198.51.100.7/x.sh`); domains, e-mails, hashes and URLs with a
//! name as host never do (resolving names would make the filter depend on DNS at stream time).
//! A CIDR value passes `cidr` when it lies wholly inside; it has no single AS, so never `asn`.
//!
//! Whatever the parameters, a value its feed's owner retracted is never streamed for that feed
//! again, replayed or live ([`Retractions`]; exports and scores drop it too, docs/trust.md).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apiary_bus::LoggedSighting;
use apiary_core::enrich::address_of;
use apiary_core::trust::score::ScoreTier;
use apiary_core::{parse, IType};
use apiary_store::{FeedbackKind, Store};
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
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

/// How stale the retracted set may get when retractions come from elsewhere (another node of
/// the hub, `apiary retract --data`); this node's retraction route updates it at once.
const RETRACTIONS_REFRESH: Duration = Duration::from_millis(500);

/// The (feed, value) pairs retracted by their feeds' owners, shared by every stream of the hub:
/// loaded from the store's feedback when the hub starts ([`Retractions::refresh`]), updated by
/// the retraction route ([`Retractions::record`]), and read again from the store every half
/// second by a task that ends with the hub's state, so a stream's check is a set lookup.
pub struct Retractions {
    store: Arc<dyn Store>,
    set: RwLock<Retracted>,
}

#[derive(Default)]
struct Retracted {
    by_feed: HashMap<i64, HashSet<Box<str>>>,
    /// The last feedback id read.
    cursor: i64,
}

impl std::fmt::Debug for Retractions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: usize = self.set.read().map(|s| s.by_feed.values().map(HashSet::len).sum()).unwrap_or(0);
        write!(f, "Retractions({n})")
    }
}

impl Retractions {
    /// The set, empty until the first refresh, read again every half second when made inside
    /// a tokio runtime (the hub's state always is).
    pub fn new(store: Arc<dyn Store>) -> Arc<Retractions> {
        let r = Arc::new(Retractions { store, set: RwLock::new(Retracted::default()) });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&r);
            rt.spawn(async move {
                loop {
                    let Some(this) = weak.upgrade() else { return };
                    if let Err(e) = this.refresh().await {
                        tracing::warn!("streams: cannot read the retractions: {e}");
                    }
                    drop(this);
                    tokio::time::sleep(RETRACTIONS_REFRESH).await;
                }
            });
        }
        r
    }

    /// A retraction the store acknowledged on this node: hidden from now on.
    pub fn record(&self, feed_id: i64, value: &str) {
        if let Ok(mut s) = self.set.write() {
            s.by_feed.entry(feed_id).or_default().insert(value.into());
        }
    }

    /// Read the retractions recorded since the last read.
    pub async fn refresh(&self) -> apiary_store::Result<()> {
        let mut cursor = self.set.read().map(|s| s.cursor).unwrap_or(0);
        loop {
            let page = self.store.feedback_after(cursor, 1000).await?;
            let Some(last) = page.last() else { return Ok(()) };
            cursor = last.id;
            if let Ok(mut s) = self.set.write() {
                for f in page.iter().filter(|f| f.kind == FeedbackKind::Retraction) {
                    if let Some(feed) = f.feed_id {
                        s.by_feed.entry(feed).or_default().insert(f.indicator.as_str().into());
                    }
                }
                s.cursor = s.cursor.max(cursor);
            }
            if page.len() < 1000 {
                return Ok(());
            }
        }
    }

    /// Whether `value` was retracted from `feed_id`.
    pub fn hides(&self, feed_id: i64, value: &str) -> bool {
        self.set.read().is_ok_and(|s| s.by_feed.get(&feed_id).is_some_and(|v| v.contains(value)))
    }
}

/// A `tier` parameter: one of the published tiers, any case.
fn parse_tier(v: &str) -> Result<ScoreTier, ApiError> {
    [ScoreTier::Observe, ScoreTier::Suspicious, ScoreTier::Block]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(v))
        .ok_or_else(|| ApiError::invalid("invalid_tier", "`tier`: one of observe, suspicious, block"))
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
    /// Checked, not applied to streams yet.
    pub tier: Option<ScoreTier>,
    networks: Vec<Net>,
    /// AS numbers asked for, and the tables that say an address's AS.
    asns: Vec<u32>,
    asn_db: Option<std::sync::Arc<crate::enrich::AsnDb>>,
    /// The hub's retracted values (never streamed for their feed).
    retractions: Option<Arc<Retractions>>,
}

impl StreamFilter {
    /// Check and normalise the parameters; every value goes through the core's parser.
    pub fn parse(p: &FilterParams, state: &AppState) -> Result<StreamFilter, ApiError> {
        let mut f = StreamFilter { retractions: Some(state.retractions.clone()), ..StreamFilter::default() };
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
        if let Some(v) = nonempty(&p.tier) {
            f.tier = Some(parse_tier(v)?);
        }
        for v in [nonempty(&p.cidr), nonempty(&p.network)].into_iter().flatten() {
            for cidr in list(v) {
                let ind = parse(cidr, None, &state.parse_options)
                    .map_err(|r| ApiError::invalid(r.code.as_str(), format!("`network`: {}", r.message)))?;
                let net = if ind.itype.is_address() { net_of(&ind.value) } else { None };
                f.networks.push(net.ok_or_else(|| ApiError::invalid("type_mismatch", format!("`cidr`: `{cidr}` is not an address or CIDR")))?);
            }
        }
        if let Some(v) = nonempty(&p.asn) {
            for a in list(v) {
                let digits = a.strip_prefix("AS").or_else(|| a.strip_prefix("as")).unwrap_or(a);
                let n = digits.parse::<u32>().map_err(|_| ApiError::invalid("invalid_asn", format!("`asn`: `{a}` is not an AS number (64500 or AS64500)")))?;
                f.asns.push(n);
            }
            if !state.config.asn.is_loaded() {
                return Err(ApiError::invalid(
                    "unsupported_filter",
                    "`asn` needs the hub's IP-to-ASN table, and this hub has none (apiary serve --asn-db FILE); use `cidr` with your prefixes",
                ));
            }
            f.asn_db = Some(state.config.asn.clone());
        }
        Ok(f)
    }

    /// Whether it narrows to some feeds (then the stream follows those feeds only).
    pub fn by_feed(&self) -> bool {
        !self.feeds.is_empty() || self.subscriptions
    }

    /// The content filters (feed choice and authorization are applied by the caller).
    pub fn matches(&self, s: &LoggedSighting) -> bool {
        if self.retractions.as_ref().is_some_and(|r| r.hides(s.feed_id, &s.indicator)) {
            return false;
        }
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
            let v = match s.itype {
                IType::Ipv4 | IType::Ipv6 => net_of(&s.indicator),
                IType::Url => address_of(s.itype, &s.indicator).and_then(|a| net_of(&a.to_string())),
                _ => None,
            };
            let Some(v) = v else { return false };
            if !self.networks.iter().any(|n| n.v6 == v.v6 && n.start <= v.start && v.end <= n.end) {
                return false;
            }
        }
        if !self.asns.is_empty() {
            let asn = self.asn_db.as_ref().and_then(|db| db.get().lookup_indicator(s.itype, &s.indicator)).and_then(|n| n.asn);
            if !asn.is_some_and(|a| self.asns.contains(&a)) {
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
