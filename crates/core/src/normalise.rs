//! Parse and normalise one raw value into an [`Indicator`].
//!
//! Order of work: size limit, trim, a fast path for the two commonest shapes (plain IPv4
//! addresses and hex hashes), then refang and detect the type from the value's shape. A caller's
//! type hint is checked against what the value is; it never turns one kind of thing into another.

use crate::addr::{add_flag, parse_net, parse_v4, write_v4, Net};
use crate::host::{parse_email, parse_host, parse_url, scheme_len, split_host_port, Host};
use crate::special::classify_v4_net;
use crate::{Derived, Flag, IType, Indicator, RejectCode, Rejection};
use std::borrow::Cow;

/// Limits and policy for [`parse`].
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Values longer than this many bytes are rejected (never truncated). Default 4096.
    pub max_len: usize,
    /// Shortest accepted IPv4 prefix. Default 8.
    pub min_prefix_v4: u8,
    /// Shortest accepted IPv6 prefix. Default 32.
    pub min_prefix_v6: u8,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { max_len: 4096, min_prefix_v4: 8, min_prefix_v6: 32 }
    }
}

/// Parse `input`, detecting its type (or checking it against `hint`), and normalise it.
pub fn parse(input: &str, hint: Option<IType>, opts: &ParseOptions) -> Result<Indicator, Rejection> {
    if input.len() > opts.max_len {
        return Err(Rejection::new(
            RejectCode::TooLong,
            format!("value is {} bytes, longer than the maximum of {} (not truncated)", input.len(), opts.max_len),
        ));
    }
    let s = trim_value(input);
    if s.is_empty() {
        return Err(Rejection::new(RejectCode::Empty, "empty value"));
    }
    if let Some(ind) = fast_path(s, hint) {
        return Ok(ind);
    }
    let mut flags = Vec::new();
    let clean = refang(s);
    if let Cow::Owned(_) = clean {
        flags.push(Flag::Refanged);
    }
    let ind = detect(&clean, hint, opts, flags)?;
    match hint {
        Some(h) if h != ind.itype && !(h == IType::Ipv6 && ind.flags.contains(&Flag::Mapped)) => Err(Rejection::new(
            RejectCode::TypeMismatch,
            format!("`{s}` is an {} value, not {h}", ind.itype),
        )),
        _ => Ok(ind),
    }
}

/// Whitespace and the quotes that CSV and JSON exports leave around values.
fn trim_value(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\u{feff}')
}

fn plain(itype: IType, value: String) -> Indicator {
    Indicator { itype, value, port: None, derived: Vec::new(), reserved: None, flags: Vec::new() }
}

/// Plain dotted-quad IPv4 and hex hashes: no allocation beyond the value itself.
#[inline]
fn fast_path(s: &str, hint: Option<IType>) -> Option<Indicator> {
    let b = s.as_bytes();
    let first = *b.first()?;
    if first.is_ascii_digit() && b.len() <= 15 && matches!(hint, None | Some(IType::Ipv4)) {
        let (a, padded) = parse_v4(b)?;
        let mut ind = plain(IType::Ipv4, String::new());
        if padded {
            ind.value.reserve(15);
            write_v4(a, &mut ind.value);
            ind.flags.push(Flag::LeadingZeros);
        } else {
            ind.value.push_str(s);
        }
        ind.reserved = classify_v4_net(a, 32);
        return Some(ind);
    }
    let itype = hash_type(b.len())?;
    if hint.is_some_and(|h| h != itype) || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(plain(itype, s.to_ascii_lowercase()))
}

fn hash_type(len: usize) -> Option<IType> {
    match len {
        32 => Some(IType::Md5),
        40 => Some(IType::Sha1),
        64 => Some(IType::Sha256),
        128 => Some(IType::Sha512),
        _ => None,
    }
}

/// Undo the usual defanging: `hxxp`/`hxxps`/`fxp` schemes and bracketed `.`, `:`, `://`, `@`,
/// `/`, `dot`, `at` in `[]`, `()` or `{}`. Borrowed when nothing changed. Repeated until stable,
/// so that nested forms like `[[.]]` normalise in one call.
pub(crate) fn refang(s: &str) -> Cow<'_, str> {
    let mut cur: Cow<'_, str> = Cow::Borrowed(s);
    loop {
        match refang_once(&cur) {
            Some(next) => cur = Cow::Owned(next),
            None => return cur,
        }
    }
}

const TOKENS: [(&str, &str); 7] = [("://", "://"), (".", "."), ("dot", "."), (":", ":"), ("@", "@"), ("at", "@"), ("/", "/")];

fn refang_once(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let scheme = defanged_scheme(s);
    if scheme.is_none() && !b.iter().any(|&c| matches!(c, b'[' | b'(' | b'{')) {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut i = 0;
    if let Some((rep, n)) = scheme {
        out.push_str(rep);
        i = n;
        changed = true;
    }
    let mut copied = i;
    while i < b.len() {
        let close = match b[i] {
            b'[' => b']',
            b'(' => b')',
            b'{' => b'}',
            _ => {
                i += 1;
                continue;
            }
        };
        let mut hit = None;
        for (inner, rep) in TOKENS {
            let end = i + 1 + inner.len();
            if end < b.len() + 1
                && b.get(end) == Some(&close)
                && b[i + 1..end].eq_ignore_ascii_case(inner.as_bytes())
            {
                hit = Some((rep, end + 1));
                break;
            }
        }
        match hit {
            Some((rep, next)) => {
                out.push_str(&s[copied..i]);
                out.push_str(rep);
                i = next;
                copied = next;
                changed = true;
            }
            None => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&s[copied..]);
    Some(out)
}

/// A defanged scheme at the start (`hxxp`, `hxxps`, `fxp`, any case), followed by `:` or `[`.
fn defanged_scheme(s: &str) -> Option<(&'static str, usize)> {
    let b = s.as_bytes();
    for (from, to) in [("hxxps", "https"), ("hxxp", "http"), ("fxps", "ftps"), ("fxp", "ftp")] {
        if b.len() > from.len()
            && b[..from.len()].eq_ignore_ascii_case(from.as_bytes())
            && matches!(b[from.len()], b':' | b'[' | b'(' | b'{')
        {
            return Some((to, from.len()));
        }
    }
    None
}

fn detect(s: &str, hint: Option<IType>, opts: &ParseOptions, mut flags: Vec<Flag>) -> Result<Indicator, Rejection> {
    let b = s.as_bytes();
    if hint == Some(IType::Asn) {
        return parse_asn(s, true).unwrap_or_else(|| Err(bad_asn(s))).map(|v| with_flags(plain(IType::Asn, v), flags));
    }
    if let Some(r) = parse_asn(s, false) {
        return r.map(|v| with_flags(plain(IType::Asn, v), flags));
    }
    if scheme_len(s).is_some() {
        return url_indicator(s, flags);
    }
    if hint == Some(IType::Url) {
        add_flag(&mut flags, Flag::SchemeAdded);
        return url_indicator(&format!("http://{s}"), flags);
    }
    // A hex-only value is a hash unless the caller says it is something else (`cafe` as fqdn).
    if b.iter().all(u8::is_ascii_hexdigit) && hint.is_none_or(IType::is_hash) {
        return hash_indicator(s, hint, flags);
    }
    if let Some(slash) = s.find('/') {
        let (head, tail) = (&s[..slash], &s[slash + 1..]);
        // `address/digits...` is a CIDR (or a bad one), never a scheme-less URL.
        let cidr_tail = tail.as_bytes().first().is_some_and(u8::is_ascii_digit);
        let bare_addr = parse_v4(head.as_bytes()).is_some() || (head.contains(':') && !head.starts_with('['));
        if cidr_tail && bare_addr {
            let net = parse_net(s, opts.min_prefix_v4, opts.min_prefix_v6, &mut flags)?;
            return Ok(net_indicator(net, None, flags));
        }
        if plausible_web_host(head) {
            add_flag(&mut flags, Flag::SchemeAdded);
            return url_indicator(&format!("http://{s}"), flags);
        }
    }
    if s.contains('@') {
        let (value, domain) = parse_email(s, &mut flags)?;
        let mut ind = with_flags(plain(IType::Email, value), flags);
        ind.derived.push(Derived { itype: IType::Fqdn, value: domain });
        return Ok(ind);
    }
    if let Some(bar) = s.rfind('|') {
        let port = crate::host::parse_port(&s[bar + 1..]).map_err(|_| {
            Rejection::new(RejectCode::UnknownType, format!("`{s}`: expected `address|port` or `host|port`"))
        })?;
        return host_indicator(&s[..bar], Some(port), hint, opts, flags);
    }
    if s.starts_with('[') {
        let (host, port) = split_host_port(s)?;
        return host_indicator(host, port, hint, opts, flags);
    }
    match b.iter().filter(|&&c| c == b':').count() {
        0 => host_indicator(s, None, hint, opts, flags),
        1 => {
            let (host, port) = split_host_port(s)?;
            if host.is_empty() {
                return Err(Rejection::new(RejectCode::UnknownType, format!("`{s}` has no host before ':'")));
            }
            host_indicator(host, port, hint, opts, flags)
        }
        _ => {
            let net = parse_net(s, opts.min_prefix_v4, opts.min_prefix_v6, &mut flags)?;
            Ok(net_indicator(net, None, flags))
        }
    }
}

fn with_flags(mut ind: Indicator, flags: Vec<Flag>) -> Indicator {
    ind.flags = flags;
    ind
}

fn net_indicator(net: Net, port: Option<u16>, flags: Vec<Flag>) -> Indicator {
    let mut value = String::with_capacity(24);
    net.write(&mut value);
    Indicator { itype: net.itype(), value, port, derived: Vec::new(), reserved: net.reserved(), flags }
}

/// An address, CIDR or name, optionally with a port (ports only with a single address or a name).
fn host_indicator(
    s: &str,
    port: Option<u16>,
    hint: Option<IType>,
    opts: &ParseOptions,
    mut flags: Vec<Flag>,
) -> Result<Indicator, Rejection> {
    let bracketed = s.starts_with('[');
    let looks_v4 = s.bytes().all(|c| c.is_ascii_digit() || c == b'.' || c == b'/');
    if bracketed || looks_v4 || s.contains(':') {
        let inner = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
        let net = parse_net(inner, opts.min_prefix_v4, opts.min_prefix_v6, &mut flags)?;
        if port.is_some() && net.is_network() {
            return Err(Rejection::new(RejectCode::InvalidPort, format!("`{s}`: a network cannot have a port")));
        }
        return Ok(net_indicator(net, port, flags));
    }
    match parse_host(s, hint == Some(IType::Fqdn), &mut flags)? {
        Host::Name(n) => {
            let mut ind = with_flags(plain(IType::Fqdn, n), flags);
            ind.port = port;
            Ok(ind)
        }
        Host::Addr(net) => Ok(net_indicator(net, port, flags)),
    }
}

/// `example.com/path` without a scheme: only when the part before `/` is a real host (an
/// address, or a name with at least two labels).
fn plausible_web_host(head: &str) -> bool {
    let Ok((host, _)) = split_host_port(head) else { return false };
    let mut scratch = Vec::new();
    !host.is_empty() && parse_host(host, false, &mut scratch).is_ok()
}

fn url_indicator(s: &str, mut flags: Vec<Flag>) -> Result<Indicator, Rejection> {
    let url = parse_url(s, &mut flags)?;
    let reserved = url.host.reserved();
    let derived = vec![url.host.derived()];
    Ok(Indicator { itype: IType::Url, value: url.value, port: url.port, derived, reserved, flags })
}

fn hash_indicator(s: &str, hint: Option<IType>, flags: Vec<Flag>) -> Result<Indicator, Rejection> {
    let n = s.len();
    match (hash_type(n), hint) {
        (Some(t), None) => Ok(with_flags(plain(t, s.to_ascii_lowercase()), flags)),
        (Some(t), Some(h)) if h == t => Ok(with_flags(plain(t, s.to_ascii_lowercase()), flags)),
        (Some(t), Some(h)) => Err(Rejection::new(
            RejectCode::TypeMismatch,
            format!("{n} hex characters is a {t} value, not {h}"),
        )),
        (None, h) if n >= 16 || h.is_some_and(IType::is_hash) => Err(Rejection::new(
            RejectCode::BadHashLength,
            format!("{n} hex characters matches no hash length (md5 32, sha1 40, sha256 64, sha512 128)"),
        )),
        (None, _) => Err(Rejection::new(
            RejectCode::UnknownType,
            format!("`{s}` is not a recognised indicator (a bare number or short hex string; give type asn for an AS number)"),
        )),
    }
}

fn bad_asn(s: &str) -> Rejection {
    Rejection::new(RejectCode::InvalidAsn, format!("`{s}` is not an AS number (AS0 to AS4294967295, or asdot)"))
}

/// `AS64500`, `as64500`, `ASN64500`, `AS 64500`, asdot `AS1.10`; with `bare` also `64500`.
/// `None` when the value does not look like an AS number at all.
fn parse_asn(s: &str, bare: bool) -> Option<Result<String, Rejection>> {
    let b = s.as_bytes();
    let mut rest = if b.len() >= 2 && b[..2].eq_ignore_ascii_case(b"as") {
        let r = &s[2..];
        let r = r.strip_prefix(['n', 'N']).unwrap_or(r);
        r.strip_prefix(' ').unwrap_or(r)
    } else if bare {
        s
    } else {
        return None;
    };
    if rest.is_empty() || !rest.bytes().all(|c| c.is_ascii_digit() || c == b'.') || !rest.as_bytes()[0].is_ascii_digit() {
        return if bare { Some(Err(bad_asn(s))) } else { None };
    }
    let number = match rest.split_once('.') {
        Some((hi, lo)) => {
            let hi: u64 = hi.parse().ok().filter(|&v| v <= 65535 && hi.len() <= 5)?;
            let lo: u64 = lo.parse().ok().filter(|&v| v <= 65535 && lo.len() <= 5)?;
            Some(hi * 65536 + lo)
        }
        None => {
            rest = rest.trim_start_matches('0');
            if rest.is_empty() {
                Some(0)
            } else if rest.len() > 10 {
                None
            } else {
                rest.parse::<u64>().ok()
            }
        }
    };
    Some(match number {
        Some(n) if n <= u32::MAX as u64 => Ok(format!("AS{n}")),
        _ => Err(bad_asn(s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refang_forms() {
        assert_eq!(refang("HXXPS://login.example[.]com/verify"), "https://login.example.com/verify");
        assert_eq!(refang("evil(dot)example{.}org"), "evil.example.org");
        assert_eq!(refang("a[at]example[.]com"), "a@example.com");
        assert_eq!(refang("hxxp[://]x[.]example"), "http://x.example");
        assert_eq!(refang("x[[.]]y"), "x.y");
        assert!(matches!(refang("[2001:db8::1]:443"), Cow::Borrowed(_)));
    }

    #[test]
    fn asn_forms() {
        assert_eq!(parse_asn("AS64500", false).unwrap().unwrap(), "AS64500");
        assert_eq!(parse_asn("asn064500", false).unwrap().unwrap(), "AS64500");
        assert_eq!(parse_asn("AS1.10", false).unwrap().unwrap(), "AS65546");
        assert!(parse_asn("as1.example.com", false).is_none());
        assert!(parse_asn("AS99999999999", false).unwrap().is_err());
        assert_eq!(parse_asn("64500", true).unwrap().unwrap(), "AS64500");
    }
}
