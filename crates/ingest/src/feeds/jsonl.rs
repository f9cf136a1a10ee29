//! `jsonl`: JSON lines with Apiary's native field names, one indicator object per line (what
//! `apiary export --format jsonl` writes and the native publish API reads).
//!
//! Fields: `indicator` (required), `itype`, `tags` (a list or a comma-separated string),
//! `description`, `firsttime`/`lasttime` (also `first_at`/`last_at`), `portlist` (one port, a
//! list, or a string), `protocol`, `tlp`. Every other field is kept as it is.

use super::{each_line, rejected, scalar_text, Entry, Format, Options, Record};
use apiary_core::IType;
use serde_json::{Map, Value};
use std::io::{self, BufRead};

pub struct Jsonl;

impl Format for Jsonl {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn about(&self) -> &'static str {
        "JSON lines with native field names (`indicator`, `itype`, `tags`, ...)"
    }

    fn read(&self, input: &mut dyn BufRead, _opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        json_lines(input, &mut |n, obj| match obj {
            Ok(obj) => out(native_record(n, obj)),
            Err(entry) => out(entry),
        })
    }
}

/// Read JSON lines: `f` gets each line's number and either its JSON object, or the entry the
/// line already is (blank, `#` comment, or rejected as not a JSON object).
pub(crate) fn json_lines(input: &mut dyn BufRead, f: &mut dyn FnMut(u64, Result<Map<String, Value>, Entry>)) -> io::Result<()> {
    each_line(input, &mut |n, line| {
        let t = line.trim();
        if t.is_empty() {
            return f(n, Err(Entry::Blank));
        }
        if t.starts_with('#') || t.starts_with("//") {
            return f(n, Err(Entry::Comment));
        }
        match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(m)) => f(n, Ok(m)),
            Ok(_) => f(n, Err(rejected(n, "not_an_object", t, "the line is JSON but not an object"))),
            Err(e) => f(n, Err(rejected(n, "not_json", t, format!("not JSON: {e}")))),
        }
    })
}

/// A native indicator object as a record.
fn native_record(n: u64, mut obj: Map<String, Value>) -> Entry {
    let value = match obj.remove("indicator") {
        Some(v) => match scalar_text(&v) {
            Some(s) => s,
            None => return rejected(n, "invalid_field", &v.to_string(), "`indicator` must be a string"),
        },
        None => return rejected(n, "missing_field", &Value::Object(obj).to_string(), "the object has no `indicator`"),
    };
    let mut r = Record::new(n, value);
    if let Some(t) = obj.remove("itype").as_ref().and_then(scalar_text).filter(|t| !t.trim().is_empty()) {
        match IType::from_name(&t) {
            Some(it) => r.hint = Some(it),
            None => return rejected(n, "unknown_type", &r.value, format!("unknown itype `{t}`")),
        }
    }
    for key in ["tags", "tag_list"] {
        match obj.remove(key) {
            Some(Value::String(s)) => r.tags.extend(s.split(',').map(str::to_owned)),
            Some(Value::Array(items)) => r.tags.extend(items.iter().filter_map(scalar_text)),
            _ => {}
        }
    }
    let mut take = |names: &[&str]| names.iter().find_map(|k| obj.remove(*k).as_ref().and_then(scalar_text));
    r.description = take(&["description"]);
    r.first_seen = take(&["firsttime", "first_at"]);
    r.last_seen = take(&["lasttime", "last_at"]);
    r.protocol = take(&["protocol"]);
    r.tlp = take(&["tlp"]);
    match obj.get("portlist") {
        Some(Value::Number(p)) => r.port = p.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(Value::String(s)) => r.port = s.trim().parse().ok(),
        Some(Value::Array(a)) if a.len() == 1 => r.port = a[0].as_u64().and_then(|p| u16::try_from(p).ok()),
        _ => {}
    }
    if r.port.is_some() {
        obj.remove("portlist");
    }
    r.extra = obj;
    Entry::Record(r)
}
