//! Small HTML helpers: escaping, the page shell, links, numbers and times as people read them.

use std::borrow::Cow;
use std::fmt::Write;

use apiary_store::Timestamp;

use super::NAV;

/// Escape text for an HTML element or a quoted attribute.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Percent-encode a path segment: everything but unreserved characters, `:` and `@` (so an
/// IPv6 address stays readable) is encoded, `/` included.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Percent-encode a query-string value.
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b':') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The page of one indicator (its value already normalised).
pub fn indicator_href(value: &str) -> String {
    format!("/indicators/{}", encode_segment(value))
}

/// A link to an indicator's page, the value shown in full.
pub fn indicator_link(value: &str) -> String {
    format!("<a class=\"value\" href=\"{}\">{}</a>", esc(&indicator_href(value)), esc(value))
}

/// A link to a feed's page (`owner/name`).
pub fn feed_link(full_name: &str) -> String {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, ""));
    format!(
        "<a href=\"/feeds/{}/{}\">{}</a>",
        encode_segment(owner),
        encode_segment(name),
        esc(full_name)
    )
}

/// 1234567 → `1,234,567`.
pub fn num(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A time as `2024-05-01 12:34 UTC`, in a `<time>` element with the exact value.
pub fn time(t: Timestamp) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        apiary_core::format_time(t),
        t.format("%Y-%m-%d %H:%M UTC")
    )
}

/// A duration in seconds as people say it.
pub fn duration(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let text = match s {
        0..=89 => format!("{s} s"),
        90..=5399 => format!("{} min", (s + 30) / 60),
        5400..=172_799 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} days", s as f64 / 86400.0),
    };
    if secs < 0 {
        format!("−{text}")
    } else {
        text
    }
}

/// A "not available" box: a section whose data this hub does not have (yet).
/// A tried credential as `user / password`, an empty or missing part shown as `(empty)` so an
/// empty user is told apart from an empty password (`root / (empty)`, `(empty) / root`).
pub fn credential(user: Option<&str>, password: &str) -> String {
    let part = |s: Option<&str>| match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "(empty)".to_string(),
    };
    format!("{} / {}", part(user), part(Some(password)))
}

pub fn unavailable(what: &str, why: &str) -> String {
    format!(
        "<div class=\"unavailable\" data-state=\"unavailable\"><strong>{} — not available.</strong> {}</div>",
        esc(what),
        esc(why)
    )
}

/// The whole document around a page's `<main>`.
pub fn shell(title: &str, active: &str, main: &str) -> String {
    let mut nav = String::new();
    for (href, label) in NAV {
        let current = if *href == active { " aria-current=\"page\"" } else { "" };
        let _ = write!(nav, "<li><a href=\"{href}\"{current}>{label}</a></li>");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · Apiary</title>\
<link rel=\"stylesheet\" href=\"/assets/style.css?v={v}\">\
<link rel=\"icon\" href=\"/assets/favicon.svg?v={v}\" type=\"image/svg+xml\">\
<script src=\"/assets/app.js?v={v}\" defer></script></head>\
<body><a class=\"skip\" href=\"#main\">Skip to content</a>\
<header class=\"top\"><a class=\"brand\" href=\"/\">Apiary</a>\
<nav aria-label=\"Pages\"><ul>{nav}</ul></nav>\
<form class=\"search\" action=\"/indicators\" method=\"get\" role=\"search\">\
<label for=\"top-q\" class=\"sr\">Look up an indicator</label>\
<input id=\"top-q\" name=\"q\" type=\"search\" placeholder=\"IP, domain, URL, hash…\" autocomplete=\"off\">\
<button type=\"submit\">Look up</button></form>\
<span id=\"whoami\" class=\"whoami\" aria-live=\"polite\"></span></header>\
{main}<footer>Apiary hub · <a href=\"/api/v1/openapi.json\">API</a> · <a href=\"/metrics\">metrics</a></footer>\
</body></html>",
        title = esc(title),
        v = format_args!("{:x}", super::assets::VERSION),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_encoding() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(encode_segment("http://a.example/x?y=1"), "http:%2F%2Fa.example%2Fx%3Fy%3D1");
        assert_eq!(encode_segment("2001:db8::1"), "2001:db8::1");
        assert_eq!(encode_segment("198.51.100.0/24"), "198.51.100.0%2F24");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(num(-12), "-12");
        assert_eq!(num(999), "999");
    }
}
