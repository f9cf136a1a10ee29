//! STIX 2.1 bundles of `indicator` objects, for threat-intelligence platforms (MISP, OpenCTI)
//! and the TAXII server.
//!
//! Ids are deterministic (UUIDv5 in Apiary's namespace), so a re-export of the same feed
//! yields the same ids and a platform updates instead of duplicating: an indicator's id comes
//! from its scope (the feed, or the hub-wide tier) and its value. `created` is the first time
//! the value was seen and `modified` the last, so a value seen again is a new *version* of the
//! same object. Every indicator carries its TLP 1.0 marking (the fixed marking-definition
//! objects of the STIX 2.1 specification), and the markings used are appended to the bundle.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Format, Meta, Record};
use crate::IType;

/// Apiary's UUIDv5 namespace (itself the UUIDv5 of `apiary:stix` in the URL namespace).
pub fn namespace() -> Uuid {
    static NS: std::sync::OnceLock<Uuid> = std::sync::OnceLock::new();
    *NS.get_or_init(|| Uuid::new_v5(&Uuid::NAMESPACE_URL, b"apiary:stix"))
}

/// A deterministic UUID for `name` among things of `kind` (`indicator`, `identity`,
/// `collection`, ...).
pub fn uuid(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(&namespace(), format!("{kind}|{name}").as_bytes())
}

/// The STIX id of the indicator for `value` of type `itype` in `scope` (a feed's `owner/name`,
/// or a tier such as `hub/block`).
pub fn indicator_id(scope: &str, itype: IType, value: &str) -> String {
    format!("indicator--{}", uuid("indicator", &format!("{scope}|{}|{value}", itype.as_str())))
}

/// The STIX id of the identity of `producer`.
pub fn identity_id(producer: &str) -> String {
    format!("identity--{}", uuid("identity", producer))
}

/// A STIX timestamp: UTC, millisecond precision.
pub fn time(t: DateTime<Utc>) -> String {
    super::time_millis(t)
}

/// The fixed TLP 1.0 marking definitions (STIX 2.1 §7.2.1.4): (label, id, name).
pub const TLP_MARKINGS: [(&str, &str, &str); 4] = [
    ("white", "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", "TLP:WHITE"),
    ("green", "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "TLP:GREEN"),
    ("amber", "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", "TLP:AMBER"),
    ("red", "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "TLP:RED"),
];

/// `created` of every TLP marking definition.
pub const TLP_CREATED: &str = "2017-01-20T00:00:00.000Z";

/// Index into [`TLP_MARKINGS`] of a TLP label (`clear` is TLP 1.0's `white`; unknown → green).
fn tlp_index(label: &str) -> usize {
    match label.to_ascii_lowercase().as_str() {
        "clear" | "white" => 0,
        "amber" | "amber+strict" => 2,
        "red" => 3,
        _ => 1,
    }
}

/// The marking-definition id of a TLP label.
pub fn tlp_marking_id(label: &str) -> &'static str {
    TLP_MARKINGS[tlp_index(label)].1
}

/// The marking-definition object of a TLP label, as JSON text.
pub fn tlp_marking(label: &str) -> String {
    let (tlp, id, name) = TLP_MARKINGS[tlp_index(label)];
    format!(
        r#"{{"type":"marking-definition","spec_version":"2.1","id":"{id}","created":"{TLP_CREATED}","definition_type":"tlp","name":"{name}","definition":{{"tlp":"{tlp}"}}}}"#
    )
}

/// A value inside a STIX pattern string literal: `\` and `'` escaped.
pub fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('\'');
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('\'');
    s
}

/// The STIX pattern of an indicator value, or None for a value STIX cannot express.
pub fn pattern(itype: IType, value: &str) -> Option<String> {
    let q = quote(value);
    Some(match itype {
        IType::Ipv4 => format!("[ipv4-addr:value = {q}]"),
        IType::Ipv6 => format!("[ipv6-addr:value = {q}]"),
        IType::Fqdn => format!("[domain-name:value = {q}]"),
        IType::Url => format!("[url:value = {q}]"),
        IType::Email => format!("[email-addr:value = {q}]"),
        IType::Md5 => format!("[file:hashes.MD5 = {q}]"),
        IType::Sha1 => format!("[file:hashes.'SHA-1' = {q}]"),
        IType::Sha256 => format!("[file:hashes.'SHA-256' = {q}]"),
        IType::Sha512 => format!("[file:hashes.'SHA-512' = {q}]"),
        IType::Asn => {
            let n: u64 = value.trim_start_matches(|c: char| c.is_ascii_alphabetic()).parse().ok()?;
            format!("[autonomous-system:number = {n}]")
        }
    })
}

/// One STIX `indicator` object.
#[derive(Serialize)]
pub struct IndicatorObject<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub spec_version: &'static str,
    pub id: String,
    pub created_by_ref: &'a str,
    pub created: String,
    pub modified: String,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub indicator_types: [&'static str; 1],
    pub pattern: String,
    pub pattern_type: &'static str,
    pub pattern_version: &'static str,
    pub valid_from: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub labels: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    pub object_marking_refs: [&'static str; 1],
}

impl<'a> IndicatorObject<'a> {
    /// The indicator for `r` in `scope`, created by `identity` (an identity id). None when
    /// STIX has no pattern for the value.
    pub fn of(r: &Record<'a>, scope: &str, identity: &'a str) -> Option<IndicatorObject<'a>> {
        let pattern = pattern(r.itype, r.value)?;
        let created = r.firsttime.min(r.lasttime);
        let created_text = time(created);
        Some(IndicatorObject {
            kind: "indicator",
            spec_version: "2.1",
            id: indicator_id(scope, r.itype, r.value),
            created_by_ref: identity,
            created: created_text.clone(),
            modified: time(r.lasttime.max(created)),
            name: r.value,
            description: r.description.filter(|d| !d.trim().is_empty()),
            indicator_types: ["malicious-activity"],
            pattern,
            pattern_type: "stix",
            pattern_version: "2.1",
            valid_from: created_text,
            labels: r.tags,
            // STIX confidence is 0–100; the publisher's claim is 0–10.
            confidence: r.confidence.filter(|c| c.is_finite()).map(|c| (c.clamp(0.0, 10.0) * 10.0).round() as u8),
            object_marking_refs: [tlp_marking_id(r.tlp)],
        })
    }
}

/// The `identity` object of a producer, as JSON text.
pub fn identity(producer: &str, since: DateTime<Utc>) -> String {
    serde_json::json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id(producer),
        "created": time(since),
        "modified": time(since),
        "name": producer,
        "identity_class": "unknown",
    })
    .to_string()
}

pub struct Stix {
    meta: Meta,
    identity: String,
    /// Which TLP markings the bundle's indicators used (appended at the end).
    used: [bool; 4],
    /// One object's JSON: serde writes many small pieces, cheaper into a `Vec` than through
    /// `dyn Write`.
    buf: Vec<u8>,
}

impl Stix {
    pub fn boxed(meta: &Meta) -> Box<dyn Format> {
        Box::new(Stix { meta: meta.clone(), identity: identity_id(&meta.producer), used: [false; 4], buf: Vec::with_capacity(1024) })
    }
}

impl Format for Stix {
    fn accepts(&self, r: &Record) -> bool {
        pattern(r.itype, r.value).is_some()
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let bundle = uuid("bundle", &format!("{}|{}", self.meta.source, time(self.meta.generated)));
        write!(out, r#"{{"type":"bundle","id":"bundle--{bundle}","objects":["#)?;
        write!(out, "\n{}", identity(&self.meta.producer, self.meta.producer_since))
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        let Some(obj) = IndicatorObject::of(r, &self.meta.source, &self.identity) else { return Ok(()) };
        self.used[tlp_index(r.tlp)] = true;
        self.buf.clear();
        self.buf.extend_from_slice(b",\n");
        serde_json::to_writer(&mut self.buf, &obj).map_err(io::Error::from)?;
        out.write_all(&self.buf)
    }

    fn footer(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for (i, (label, _, _)) in TLP_MARKINGS.iter().enumerate() {
            if self.used[i] {
                write!(out, ",\n{}", tlp_marking(label))?;
            }
        }
        out.write_all(b"\n]}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_quotes_and_backslashes() {
        assert_eq!(pattern(IType::Ipv4, "198.51.100.7").unwrap(), "[ipv4-addr:value = '198.51.100.7']");
        assert_eq!(pattern(IType::Url, r"http://a.example/it's\x").unwrap(), r"[url:value = 'http://a.example/it\'s\\x']");
        assert_eq!(pattern(IType::Sha256, "ab").unwrap(), "[file:hashes.'SHA-256' = 'ab']");
        assert_eq!(pattern(IType::Asn, "AS64496").unwrap(), "[autonomous-system:number = 64496]");
    }

    #[test]
    fn ids_are_deterministic_v5() {
        let a = indicator_id("alice/scanners", IType::Ipv4, "198.51.100.7");
        assert_eq!(a, indicator_id("alice/scanners", IType::Ipv4, "198.51.100.7"));
        assert_ne!(a, indicator_id("bob/scanners", IType::Ipv4, "198.51.100.7"));
        let u = Uuid::parse_str(a.trim_start_matches("indicator--")).unwrap();
        assert_eq!(u.get_version_num(), 5);
    }

    #[test]
    fn tlp_markings_are_the_spec_objects() {
        let v: serde_json::Value = serde_json::from_str(&tlp_marking("clear")).unwrap();
        assert_eq!(v["id"], "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9");
        assert_eq!(v["created"], "2017-01-20T00:00:00.000Z");
        assert_eq!(v["definition"]["tlp"], "white");
        assert_eq!(tlp_marking_id("red"), "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed");
    }
}
