//! `spamhaus-drop-json`: Spamhaus DROP as JSON lines (`drop_v4.json`, `drop_v6.json`):
//! `{"cidr": ..., "sblid": ..., "rir": ...}` per line, then one trailing
//! `{"type": "metadata", "records": N, ...}` record about the file.
//!
//! The metadata record is not a value: its `records` count is checked against the rows read,
//! and a difference (a truncated download) is noted in the summary.

use super::jsonl::json_lines;
use super::{rejected, scalar_text, Entry, Format, Options, Record};
use serde_json::Value;
use std::io::{self, BufRead};

pub struct SpamhausDropJson;

impl Format for SpamhausDropJson {
    fn name(&self) -> &'static str {
        "spamhaus-drop-json"
    }

    fn about(&self) -> &'static str {
        "Spamhaus DROP JSON lines: `cidr`, `sblid`, `rir`; trailing metadata record"
    }

    fn read(&self, input: &mut dyn BufRead, _opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        let mut rows = 0u64;
        json_lines(input, &mut |n, obj| {
            let mut obj = match obj {
                Ok(obj) => obj,
                Err(entry) => return out(entry),
            };
            if obj.get("type").and_then(Value::as_str) == Some("metadata") {
                let listed = obj.get("records").and_then(Value::as_u64);
                let note = match listed {
                    Some(k) if k == rows => format!("metadata record: {k} records listed, {rows} read"),
                    Some(k) => format!("metadata record: {k} records listed but {rows} read (truncated or altered file?)"),
                    None => "metadata record without a `records` count".to_owned(),
                };
                return out(Entry::Metadata { line: n, note });
            }
            rows += 1;
            let Some(cidr) = obj.remove("cidr").as_ref().and_then(scalar_text) else {
                return out(rejected(n, "missing_field", &Value::Object(obj).to_string(), "the record has no `cidr`"));
            };
            let mut r = Record::new(n, cidr);
            if let Some(sbl) = obj.get("sblid").and_then(scalar_text) {
                r.description = Some(sbl);
            }
            r.extra = obj;
            out(Entry::Record(r))
        })
    }
}
