//! One Cowrie event (one line of `cowrie.json`), read with a hand-written visitor.
//!
//! A derived `Deserialize` would either drop unknown fields or (with `flatten`) buffer every
//! field of every event; this visitor borrows strings from the line, skips the fields no one
//! uses without building them, and keeps only the unknown ones.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// The fields of a Cowrie event that the session assembler uses. Field names follow Cowrie;
/// T-Pot's `dest_ip`/`dest_port` land in `dst_ip`/`dst_port`.
#[derive(Debug, Default)]
pub struct Event<'a> {
    pub eventid: Option<Cow<'a, str>>,
    pub timestamp: Option<Cow<'a, str>>,
    pub session: Option<Cow<'a, str>>,
    pub sensor: Option<Cow<'a, str>>,
    pub src_ip: Option<Cow<'a, str>>,
    pub src_port: Option<u16>,
    pub dst_ip: Option<Cow<'a, str>>,
    pub dst_port: Option<u16>,
    pub protocol: Option<Cow<'a, str>>,
    pub system: Option<Cow<'a, str>>,
    pub uuid: Option<Cow<'a, str>>,
    pub version: Option<Cow<'a, str>>,
    pub hassh: Option<Cow<'a, str>>,
    pub username: Option<Cow<'a, str>>,
    pub password: Option<Cow<'a, str>>,
    pub fingerprint: Option<Cow<'a, str>>,
    pub input: Option<Cow<'a, str>>,
    pub url: Option<Cow<'a, str>>,
    pub shasum: Option<Cow<'a, str>>,
    pub outfile: Option<Cow<'a, str>>,
    pub destfile: Option<Cow<'a, str>>,
    pub filename: Option<Cow<'a, str>>,
    pub error: Option<Cow<'a, str>>,
    pub ttylog: Option<Cow<'a, str>>,
    pub arch: Option<Cow<'a, str>>,
    pub orig_ip: Option<Cow<'a, str>>,
    pub orig_port: Option<u16>,
    pub size: Option<f64>,
    pub data_len: Option<usize>,
    /// Seconds, from `duration` (float or string).
    pub duration: Option<f64>,
    pub duration_ms: Option<f64>,
    /// `duplicate` (or 2018's `unique`, inverted).
    pub duplicate: Option<bool>,
    /// Fields this reader does not know, kept as sent.
    pub unknown: Vec<(String, serde_json::Value)>,
}

impl<'a> Event<'a> {
    /// Parse one line. An error means the line is not a JSON object.
    pub fn parse(line: &'a str) -> Result<Event<'a>, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// Fields that are known, carry nothing the assembler needs, and are not worth keeping per
/// session (they repeat in every event, or restate other fields).
const IGNORED: &[&str] = &[
    "message", "format", "isError", "kexAlgs", "keyAlgs", "encCS", "macCS", "compCS", "langCS",
    "hasshAlgorithms", "epoch", "late", "@timestamp", "@version", "width", "height", "key", "type",
];

impl<'de> Deserialize<'de> for Event<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (one Cowrie event)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<'de>, A::Error> {
        let mut ev = Event::default();
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            macro_rules! s {
                () => {
                    map.next_value::<Loose<'de>>()?.0
                };
            }
            match key.as_ref() {
                "eventid" => ev.eventid = s!(),
                "timestamp" => ev.timestamp = s!(),
                "session" => ev.session = s!(),
                "sensor" => ev.sensor = s!(),
                "src_ip" => ev.src_ip = s!(),
                "src_port" => ev.src_port = port(map.next_value::<Num>()?.0),
                // T-Pot renames dst_* to dest_*; Cowrie's own name wins if both are present.
                "dst_ip" => ev.dst_ip = s!(),
                "dest_ip" => {
                    let v = s!();
                    if ev.dst_ip.is_none() {
                        ev.dst_ip = v;
                    }
                }
                "dst_port" => ev.dst_port = port(map.next_value::<Num>()?.0),
                "dest_port" => {
                    let v = port(map.next_value::<Num>()?.0);
                    if ev.dst_port.is_none() {
                        ev.dst_port = v;
                    }
                }
                "protocol" => ev.protocol = s!(),
                "system" => ev.system = s!(),
                "uuid" => ev.uuid = s!(),
                "version" => ev.version = s!(),
                "hassh" => ev.hassh = s!(),
                "username" => ev.username = s!(),
                "password" => ev.password = s!(),
                "fingerprint" => ev.fingerprint = s!(),
                "input" => ev.input = s!(),
                "url" => ev.url = s!(),
                "shasum" => ev.shasum = s!(),
                "outfile" => ev.outfile = s!(),
                "destfile" => ev.destfile = s!(),
                "filename" => ev.filename = s!(),
                "error" => ev.error = s!(),
                "ttylog" => ev.ttylog = s!(),
                "arch" => ev.arch = s!(),
                "orig_ip" => ev.orig_ip = s!(),
                "orig_port" => ev.orig_port = port(map.next_value::<Num>()?.0),
                "size" => ev.size = map.next_value::<Num>()?.0,
                "data" => ev.data_len = s!().map(|d| d.len()),
                "duration" => ev.duration = map.next_value::<Num>()?.0,
                "duration_ms" => ev.duration_ms = map.next_value::<Num>()?.0,
                "duplicate" => ev.duplicate = map.next_value::<Flag>()?.0,
                "unique" => ev.duplicate = map.next_value::<Flag>()?.0.map(|u| !u),
                k if IGNORED.contains(&k) => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let v = map.next_value::<serde_json::Value>()?;
                    ev.unknown.push((key.into_owned(), v));
                }
            }
        }
        Ok(ev)
    }
}

fn port(n: Option<f64>) -> Option<u16> {
    n.filter(|p| p.fract() == 0.0 && *p >= 0.0 && *p <= 65535.0).map(|p| p as u16)
}

/// A string, borrowed from the line when it holds no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A text field that tolerates other JSON types: numbers and booleans become their text,
/// `null`, lists and objects become `None` (a password typed as digits arrives as a number in
/// some pipelines; `message` is a list in `cowrie.session.params`).
struct Loose<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Owned(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Loose<'de>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose<'de>, E> {
                Ok(Loose(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number that may arrive as a number or as a numeric string (`"duration": "12.5"`).
struct Num(Option<f64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Loose(s) = Loose::deserialize(d)?;
        Ok(Num(s.and_then(|s| s.trim().parse::<f64>().ok()).filter(|n| n.is_finite())))
    }
}

/// A boolean that may arrive as `true`, `1`, or `"true"`.
struct Flag(Option<bool>);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Loose(s) = Loose::deserialize(d)?;
        Ok(Flag(s.and_then(|s| match s.trim() {
            "true" | "1" | "True" => Some(true),
            "false" | "0" | "False" => Some(false),
            _ => None,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_fields_and_keeps_unknown_ones() {
        let line = r#"{"eventid":"cowrie.session.connect","src_ip":"192.0.2.1","src_port":"4242","dest_ip":"10.0.0.2","dest_port":22,"session":"abc","geoip":{"cc":"XX"},"t-pot_hostname":"h","message":["a"],"isError":0,"sensor":"s"}"#;
        let ev = Event::parse(line).unwrap();
        assert_eq!(ev.eventid.as_deref(), Some("cowrie.session.connect"));
        assert!(matches!(ev.src_ip, Some(Cow::Borrowed("192.0.2.1"))), "strings are borrowed");
        assert_eq!(ev.src_port, Some(4242));
        assert_eq!(ev.dst_ip.as_deref(), Some("10.0.0.2"));
        assert_eq!(ev.dst_port, Some(22));
        let names: Vec<_> = ev.unknown.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["geoip", "t-pot_hostname"]);
    }

    #[test]
    fn durations_in_every_form() {
        assert_eq!(Event::parse(r#"{"duration":1.5}"#).unwrap().duration, Some(1.5));
        assert_eq!(Event::parse(r#"{"duration":"2.25"}"#).unwrap().duration, Some(2.25));
        assert_eq!(Event::parse(r#"{"duration_ms":1500}"#).unwrap().duration_ms, Some(1500.0));
        assert_eq!(Event::parse(r#"{"duration":"n/a"}"#).unwrap().duration, None);
    }

    #[test]
    fn odd_types_do_not_fail_the_line() {
        let ev = Event::parse(r#"{"password":1234,"username":null,"unique":true,"src_port":70000}"#).unwrap();
        assert_eq!(ev.password.as_deref(), Some("1234"));
        assert_eq!(ev.username, None);
        assert_eq!(ev.duplicate, Some(false));
        assert_eq!(ev.src_port, None, "out-of-range ports are dropped, not wrapped");
    }

    #[test]
    fn not_an_object_is_an_error() {
        assert!(Event::parse("[1,2]").is_err());
        assert!(Event::parse("{\"eventid\":").is_err());
        assert!(Event::parse("garbage").is_err());
    }
}
