//! `stix`: STIX 2.1 (and 2.0) bundles: the values in `indicator` objects' patterns.
//!
//! A pattern is a set of comparisons such as `[ipv4-addr:value = '198.51.100.7']`,
//! `[file:hashes.'SHA-256' = '...']` or `[url:value = 'a' OR url:value = 'b']`. Every `=`
//! comparison on a property that names a value is read: `ipv4-addr:value`, `ipv6-addr:value`
//! (also with `ISSUBSET 'cidr'`), `domain-name:value`, `url:value`, `email-addr:value`,
//! `email-message:from_ref.value`, `file:hashes.*` (MD5, SHA-1, SHA-256, SHA-512),
//! `network-traffic:dst_ref.value`/`src_ref.value` and `autonomous-system:number`. Several
//! values in one pattern (joined by `OR`, `AND` or in several observation expressions) give
//! one record each, all with the same indicator id in `extra`.
//!
//! Comparisons on anything else (`file:name`, `process:...`, `MATCHES`, `LIKE`, `!=`),
//! indicators with another `pattern_type` (Snort, YARA, Sigma) and revoked indicators are
//! skipped and counted, not rejected. `name`/`description` give the description,
//! `indicator_types` and `labels` the tags, `valid_from` the first-seen time, a TLP marking
//! the TLP; `confidence`, `valid_until`, the id and the pattern are kept. Other objects
//! (identities, malware, relationships, ...) are not indicators and are passed over.

use super::{read_document, rejected, Entry, Format, Locator, Options, Record};
use apiary_core::IType;
use serde_json::{Map, Value};
use std::io::{self, BufRead};

pub struct Stix;

impl Format for Stix {
    fn name(&self) -> &'static str {
        "stix"
    }

    fn about(&self) -> &'static str {
        "STIX 2.1 bundle: values in indicator patterns"
    }

    fn read(&self, input: &mut dyn BufRead, _opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        let doc = read_document(input)?;
        let root: Value = match serde_json::from_str(&doc) {
            Ok(v) => v,
            Err(e) => {
                out(rejected(e.line() as u64, "not_json", "", format!("the bundle is not JSON: {e}")));
                return Ok(());
            }
        };
        let objects: Vec<Value> = match root {
            Value::Object(mut m) if m.get("type").and_then(Value::as_str) == Some("bundle") => match m.remove("objects") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            Value::Object(m) => vec![Value::Object(m)],
            Value::Array(a) => a,
            _ => {
                out(rejected(1, "not_stix", "", "not a STIX bundle, object or list of objects"));
                return Ok(());
            }
        };
        let mut locate = Locator::new(&doc);
        for (i, obj) in objects.into_iter().enumerate() {
            let obj = match obj {
                Value::Object(obj) => obj,
                // Counted, with its place in the list (it has no id to find its line by).
                other => {
                    let text = other.to_string();
                    out(rejected(0, "not_an_object", &text, format!("objects[{i}] is {text}, not a STIX object")));
                    continue;
                }
            };
            if obj.get("type").and_then(Value::as_str) != Some("indicator") {
                continue;
            }
            let id = obj.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
            let line = if id.is_empty() { 0 } else { locate.line_of(&format!("\"{id}\"")) };
            indicator(line, &obj, &mut |e| out(at_index(e, &format!("objects[{i}]"))));
        }
        Ok(())
    }
}

/// A problem without a line (an item without an id to find it by) says where it is in the list.
pub(crate) fn at_index(e: Entry, position: &str) -> Entry {
    match e {
        Entry::Rejected { line: 0, code, input, message } => Entry::Rejected { line: 0, code, input, message: format!("{position}: {message}") },
        Entry::Skipped { line: 0, reason } => Entry::Skipped { line: 0, reason: format!("{position}: {reason}") },
        e => e,
    }
}

/// TLP 1.0 marking definition ids (the fixed objects every STIX producer uses).
const TLP_MARKINGS: [(&str, &str); 4] = [
    ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", "clear"),
    ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "green"),
    ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", "amber"),
    ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "red"),
];

fn indicator(line: u64, obj: &Map<String, Value>, out: &mut dyn FnMut(Entry)) {
    let id = obj.get("id").and_then(Value::as_str).unwrap_or("");
    if obj.get("revoked").and_then(Value::as_bool) == Some(true) {
        return out(Entry::Skipped { line, reason: "revoked STIX indicator".into() });
    }
    let ptype = obj.get("pattern_type").and_then(Value::as_str).unwrap_or("stix");
    if ptype != "stix" {
        return out(Entry::Skipped { line, reason: format!("STIX pattern_type `{ptype}`") });
    }
    let Some(pattern) = obj.get("pattern").and_then(Value::as_str) else {
        return out(rejected(line, "missing_field", id, "the indicator has no `pattern`"));
    };
    let comparisons = match comparisons(pattern) {
        Ok(c) => c,
        Err(why) => return out(rejected(line, "bad_pattern", pattern, format!("unreadable STIX pattern: {why}"))),
    };
    let mut base = Record::new(line, "");
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    base.description = text("description").or_else(|| text("name"));
    for k in ["indicator_types", "labels"] {
        if let Some(Value::Array(a)) = obj.get(k) {
            base.tags.extend(a.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    }
    base.first_seen = text("valid_from");
    if let Some(Value::Array(refs)) = obj.get("object_marking_refs") {
        // The strictest TLP marking wins.
        let levels: Vec<usize> =
            refs.iter().filter_map(Value::as_str).filter_map(|r| TLP_MARKINGS.iter().position(|(id, _)| *id == r)).collect();
        base.tlp = levels.into_iter().max().map(|i| TLP_MARKINGS[i].1.to_owned());
    }
    for k in ["id", "name", "confidence", "valid_until", "created_by_ref", "kill_chain_phases"] {
        if let Some(v) = obj.get(k) {
            base.extra.insert(if k == "id" { "stix_id".into() } else { k.to_owned() }, v.clone());
        }
    }
    base.extra.insert("pattern".into(), Value::String(pattern.to_owned()));
    for c in comparisons {
        match target(&c.path, &c.op) {
            Some(hint) => {
                let mut r = base.clone();
                r.value = c.value;
                r.hint = hint;
                out(Entry::Record(r));
            }
            None => out(Entry::Skipped { line, reason: format!("STIX comparison `{} {}` names no indicator value", c.path, c.op) }),
        }
    }
}

/// The type a comparison's value has, when the comparison names an indicator value.
fn target(path: &str, op: &str) -> Option<Option<IType>> {
    let (object, prop) = path.split_once(':')?;
    let prop = prop.replace('\'', "");
    let hint = match (object, prop.as_str()) {
        ("ipv4-addr", "value") => Some(IType::Ipv4),
        ("ipv6-addr", "value") => Some(IType::Ipv6),
        ("domain-name", "value") => Some(IType::Fqdn),
        ("url", "value") => Some(IType::Url),
        ("email-addr", "value") | ("email-message", "from_ref.value" | "sender_ref.value") => Some(IType::Email),
        ("autonomous-system", "number") => Some(IType::Asn),
        ("network-traffic", "dst_ref.value" | "src_ref.value") => None,
        ("file" | "artifact", h) if h.starts_with("hashes.") => {
            let alg = h["hashes.".len()..].to_ascii_uppercase().replace(['-', '_'], "");
            Some(match alg.as_str() {
                "MD5" => IType::Md5,
                "SHA1" => IType::Sha1,
                "SHA256" => IType::Sha256,
                "SHA512" => IType::Sha512,
                _ => return None,
            })
        }
        _ => return None,
    };
    let cidr_ok = matches!(object, "ipv4-addr" | "ipv6-addr") && op == "ISSUBSET";
    (op == "=" || cidr_ok).then_some(hint)
}

/// One `path op value` comparison of a pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    pub path: String,
    pub op: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An object path, a keyword, a number or an operator word.
    Word(String),
    /// A quoted string (escapes removed), with its prefix letter (`t`, `h`, `b`) if any.
    Str(String),
    Punct(char),
    Op(String),
}

fn lex(p: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut toks = Vec::new();
    let string = |i: &mut usize| -> Result<String, String> {
        // chars[*i] is the opening quote.
        let mut s = String::new();
        *i += 1;
        loop {
            match chars.get(*i) {
                None => return Err("a quoted string is not closed".into()),
                Some('\\') => {
                    match chars.get(*i + 1) {
                        Some(c) => s.push(*c),
                        None => return Err("a quoted string ends in `\\`".into()),
                    }
                    *i += 2;
                }
                Some('\'') => {
                    *i += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(*c);
                    *i += 1;
                }
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '[' | ']' | '(' | ')' | ',' => {
                toks.push(Tok::Punct(c));
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                if chars.get(i + 1) == Some(&'=') {
                    op.push('=');
                    i += 1;
                }
                toks.push(Tok::Op(op));
                i += 1;
            }
            '\'' => toks.push(Tok::Str(string(&mut i)?)),
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.get(i) {
                    if c == '\'' && (w.ends_with('.') || w.is_empty()) {
                        // A quoted path segment: hashes.'SHA-256'.
                        w.push('\'');
                        w.push_str(&string(&mut i)?);
                        w.push('\'');
                    } else if c == '\'' && matches!(w.as_str(), "t" | "h" | "b") {
                        w.clear();
                        toks.push(Tok::Str(string(&mut i)?));
                        break;
                    } else if c.is_whitespace() || "[](),=!<>".contains(c) {
                        break;
                    } else {
                        w.push(c);
                        i += 1;
                    }
                }
                if !w.is_empty() {
                    toks.push(Tok::Word(w));
                }
            }
        }
    }
    Ok(toks)
}

/// Every comparison in a pattern, in order.
pub(crate) fn comparisons(pattern: &str) -> Result<Vec<Comparison>, String> {
    let toks = lex(pattern)?;
    if !toks.contains(&Tok::Punct('[')) {
        return Err("no `[...]` observation expression".into());
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let Tok::Word(path) = &toks[i] else {
            i += 1;
            continue;
        };
        if !path.contains(':') {
            i += 1;
            continue;
        }
        // Operator: a symbol, or words (`NOT` may precede one).
        let mut j = i + 1;
        let mut op = String::new();
        while let Some(t) = toks.get(j) {
            match t {
                Tok::Op(o) => {
                    op.push_str(o);
                    j += 1;
                    break;
                }
                Tok::Word(w) if w.eq_ignore_ascii_case("NOT") => {
                    op.push_str("NOT ");
                    j += 1;
                }
                Tok::Word(w) if !w.contains(':') => {
                    op.push_str(&w.to_ascii_uppercase());
                    j += 1;
                    break;
                }
                _ => break,
            }
        }
        if op.is_empty() {
            return Err(format!("`{path}` is not followed by an operator"));
        }
        match toks.get(j) {
            Some(Tok::Str(v)) => {
                out.push(Comparison { path: path.clone(), op, value: v.clone() });
                j += 1;
            }
            Some(Tok::Word(v)) => {
                out.push(Comparison { path: path.clone(), op, value: v.clone() });
                j += 1;
            }
            Some(Tok::Punct('(')) => {
                // `IN ('a', 'b')`: a set, never an exact value; recorded as one comparison.
                let mut vals = Vec::new();
                j += 1;
                while let Some(t) = toks.get(j) {
                    j += 1;
                    match t {
                        Tok::Punct(')') => break,
                        Tok::Str(v) | Tok::Word(v) => vals.push(v.clone()),
                        _ => {}
                    }
                }
                out.push(Comparison { path: path.clone(), op, value: vals.join(",") });
            }
            _ => return Err(format!("`{path} {op}` has no value")),
        }
        i = j;
    }
    Ok(out)
}
