//! Host names, URLs and e-mail addresses.

use crate::addr::{add_flag, parse_net, parse_v4, write_v4, Net};
use crate::{Derived, Flag, IType, RejectCode, Rejection, Reserved};
use std::fmt::Write;

/// A host as it appears in a URL authority, an e-mail domain or a `host:port` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Addr(Net),
    Name(String),
}

impl Host {
    pub(crate) fn derived(&self) -> Derived {
        match self {
            Host::Addr(n) => {
                let mut v = String::new();
                n.write(&mut v);
                Derived { itype: n.itype(), value: v }
            }
            Host::Name(n) => Derived { itype: IType::Fqdn, value: n.clone() },
        }
    }

    pub(crate) fn reserved(&self) -> Option<Reserved> {
        match self {
            Host::Addr(n) => n.reserved(),
            Host::Name(_) => None,
        }
    }
}

fn bad_domain(s: &str, why: &str) -> Rejection {
    Rejection::new(RejectCode::InvalidDomain, format!("`{s}` is not a valid domain name: {why}"))
}

/// Normalise a domain name: one trailing root dot removed, lowercased, IDN to its punycode
/// A-label, every label checked. A single-label name is accepted only when the caller says so
/// (a URL host, or an explicit `fqdn` type).
pub(crate) fn normalise_name(s: &str, single_label_ok: bool, flags: &mut Vec<Flag>) -> Result<String, Rejection> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() {
        return Err(bad_domain(s, "empty"));
    }
    let mut out = if name.is_ascii() {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("xn--") || lower.contains(".xn--") {
            // Validate the punycode labels; the canonical form is what IDNA re-encodes.
            match idna::domain_to_ascii_cow(lower.as_bytes(), idna::AsciiDenyList::URL) {
                Ok(a) => a.into_owned(),
                Err(_) => {
                    return Err(Rejection::new(
                        RejectCode::InvalidIdn,
                        format!("`{s}` has a label that is not valid punycode (IDNA)"),
                    ))
                }
            }
        } else {
            lower
        }
    } else {
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad_domain(s, "contains whitespace or control characters"));
        }
        match idna::domain_to_ascii_cow(name.as_bytes(), idna::AsciiDenyList::URL) {
            Ok(a) => {
                add_flag(flags, Flag::Idn);
                a.into_owned()
            }
            Err(_) => {
                return Err(Rejection::new(
                    RejectCode::InvalidIdn,
                    format!("`{s}` is not a valid internationalised domain name (IDNA)"),
                ))
            }
        }
    };
    // IDNA may map a trailing ideographic full stop to a root dot.
    if out.ends_with('.') {
        out.pop();
    }
    check_labels(&out, s, single_label_ok)?;
    Ok(out)
}

fn check_labels(name: &str, orig: &str, single_label_ok: bool) -> Result<(), Rejection> {
    if name.is_empty() {
        return Err(bad_domain(orig, "empty"));
    }
    if name.len() > 253 {
        return Err(bad_domain(orig, "longer than 253 characters"));
    }
    let mut labels = 0;
    let mut last = "";
    for label in name.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err(bad_domain(orig, "empty label"));
        }
        if label.len() > 63 {
            return Err(bad_domain(orig, "a label is longer than 63 characters"));
        }
        // Letters, digits, hyphen; underscore too, as real names (`_dmarc`, some CDN hosts) use it.
        if !label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
            return Err(bad_domain(orig, "a label has a character other than a-z, 0-9, '-', '_'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad_domain(orig, "a label starts or ends with '-'"));
        }
        last = label;
    }
    if labels < 2 && !single_label_ok {
        return Err(Rejection::new(
            RejectCode::UnknownType,
            format!("`{orig}` is a single word, not a domain name (give type fqdn to accept it)"),
        ));
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::new(
            RejectCode::InvalidAddress,
            format!("`{orig}` is neither a valid IPv4 address nor a domain (numeric last label)"),
        ));
    }
    Ok(())
}

/// Parse a port: 1 to 65535, decimal.
pub(crate) fn parse_port(s: &str) -> Result<u16, Rejection> {
    let bad = || Rejection::new(RejectCode::InvalidPort, format!("port `{s}` is not a number from 1 to 65535"));
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match s.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(bad()),
    }
}

/// Parse a host without a port: an IPv4 address, a bracketed or bare IPv6 address, or a name.
pub(crate) fn parse_host(s: &str, single_label_ok: bool, flags: &mut Vec<Flag>) -> Result<Host, Rejection> {
    let inner = s.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
    if let Some(v6) = inner {
        return parse_net(v6, 0, 0, flags).map(Host::Addr);
    }
    if s.contains(':') {
        return parse_net(s, 0, 0, flags).map(Host::Addr);
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (a, padded) = parse_v4(s.as_bytes()).ok_or_else(|| {
            Rejection::new(RejectCode::InvalidAddress, format!("`{s}` is not a valid IPv4 address"))
        })?;
        if padded {
            add_flag(flags, Flag::LeadingZeros);
        }
        return Ok(Host::Addr(Net::V4(a, 32)));
    }
    normalise_name(s, single_label_ok, flags).map(Host::Name)
}

/// Split `host:port`, `[v6]:port` or a bare host. An empty port (`host:`) is ignored.
pub(crate) fn split_host_port(s: &str) -> Result<(&str, Option<u16>), Rejection> {
    if s.starts_with('[') {
        let close = s.find(']').ok_or_else(|| {
            Rejection::new(RejectCode::InvalidAddress, format!("`{s}` has '[' without ']'"))
        })?;
        let rest = &s[close + 1..];
        return match rest {
            "" | ":" => Ok((&s[..=close], None)),
            _ => match rest.strip_prefix(':') {
                Some(p) => Ok((&s[..=close], Some(parse_port(p)?))),
                None => Err(Rejection::new(RejectCode::InvalidAddress, format!("unexpected `{rest}` after ']'"))),
            },
        };
    }
    match s.bytes().filter(|&b| b == b':').count() {
        0 => Ok((s, None)),
        1 => {
            let i = s.find(':').unwrap_or(s.len());
            let p = &s[i + 1..];
            if p.is_empty() {
                Ok((&s[..i], None))
            } else {
                Ok((&s[..i], Some(parse_port(p)?)))
            }
        }
        // An unbracketed IPv6 address cannot carry a port.
        _ => Ok((s, None)),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

fn is_special_scheme(scheme: &str) -> bool {
    matches!(scheme, "http" | "https" | "ftp" | "ws" | "wss")
}

/// Where the scheme of `scheme://...` ends, when the value starts with a valid scheme.
pub(crate) fn scheme_len(s: &str) -> Option<usize> {
    let i = s.find("://")?;
    let sch = &s.as_bytes()[..i];
    let ok = !sch.is_empty()
        && sch.len() <= 32
        && sch[0].is_ascii_alphabetic()
        && sch.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    ok.then_some(i)
}

/// A normalised URL.
pub(crate) struct Url {
    pub value: String,
    pub port: Option<u16>,
    pub host: Host,
}

fn bad_url(s: &str, why: &str) -> Rejection {
    Rejection::new(RejectCode::InvalidUrl, format!("`{s}` is not a valid URL: {why}"))
}

/// Normalise `scheme://[userinfo@]host[:port][/path][?query][#fragment]`: scheme and host
/// lowercased (IDN to punycode, addresses in their stored form), default port removed, an
/// empty path of a web scheme becomes `/`, path/query/fragment kept as given.
pub(crate) fn parse_url(s: &str, flags: &mut Vec<Flag>) -> Result<Url, Rejection> {
    let sl = scheme_len(s).ok_or_else(|| bad_url(s, "no `scheme://`"))?;
    let scheme = s[..sl].to_ascii_lowercase();
    let rest = &s[sl + 3..];
    if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad_url(s, "contains whitespace or control characters"));
    }
    let auth_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(auth_end);
    let (userinfo, hostport) = match auth.rfind('@') {
        Some(i) => (Some(&auth[..i]), &auth[i + 1..]),
        None => (None, auth),
    };
    if hostport.is_empty() {
        return Err(bad_url(s, "no host"));
    }
    let (host_s, port) = split_host_port(hostport).map_err(|e| bad_url(s, &e.message))?;
    let host = parse_host(host_s, true, flags).map_err(|e| match e.code {
        RejectCode::InvalidIdn => e,
        _ => bad_url(s, &e.message),
    })?;
    if let Host::Addr(n) = host {
        if n.is_network() {
            return Err(bad_url(s, "the host is a network, not an address"));
        }
    }
    let port = port.filter(|p| Some(*p) != default_port(&scheme));
    let mut value = String::with_capacity(s.len() + 1);
    value.push_str(&scheme);
    value.push_str("://");
    if let Some(u) = userinfo {
        value.push_str(u);
        value.push('@');
    }
    match &host {
        Host::Addr(Net::V4(a, _)) => write_v4(*a, &mut value),
        Host::Addr(n @ Net::V6(..)) => {
            value.push('[');
            n.write(&mut value);
            value.push(']');
        }
        Host::Name(n) => value.push_str(n),
    }
    if let Some(p) = port {
        let _ = write!(value, ":{p}");
    }
    if is_special_scheme(&scheme) && !tail.starts_with('/') && !tail.starts_with('\\') {
        value.push('/');
    }
    value.push_str(tail);
    Ok(Url { value, port, host })
}

fn bad_email(s: &str, why: &str) -> Rejection {
    Rejection::new(RejectCode::InvalidEmail, format!("`{s}` is not a valid e-mail address: {why}"))
}

/// Normalise `local@domain`: the domain is lowercased and IDN-normalised, the local part is
/// kept exactly as given (`+`, `?`, `=` and friends are legal atext; case may matter).
pub(crate) fn parse_email(s: &str, flags: &mut Vec<Flag>) -> Result<(String, String), Rejection> {
    let s0 = s;
    let s = match s.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => &s[7..],
        _ => s,
    };
    let at = s.rfind('@').ok_or_else(|| bad_email(s0, "no '@'"))?;
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.is_empty() {
        return Err(bad_email(s0, "empty local part"));
    }
    if local.len() > 64 {
        return Err(bad_email(s0, "local part longer than 64 characters"));
    }
    let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
    let ok = if quoted {
        local.chars().all(|c| !c.is_control())
    } else {
        local.chars().all(|c| {
            c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
        })
    };
    if !ok {
        return Err(bad_email(s0, "the local part has a character that is not allowed unquoted"));
    }
    let domain = normalise_name(domain, false, flags).map_err(|e| match e.code {
        RejectCode::InvalidIdn => e,
        _ => bad_email(s0, &e.message),
    })?;
    let mut value = String::with_capacity(local.len() + 1 + domain.len());
    value.push_str(local);
    value.push('@');
    value.push_str(&domain);
    Ok((value, domain))
}
