//! IPv4/IPv6 addresses and CIDRs: the text forms we accept and the one form we store.

use crate::special::{classify_v4_net, classify_v6_net, mask_v4, mask_v6};
use crate::{Flag, IType, RejectCode, Rejection, Reserved};
use std::fmt::Write;
use std::net::Ipv6Addr;

/// A parsed address or network (a single address has the full prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Net {
    V4(u32, u8),
    V6(u128, u8),
}

impl Net {
    pub(crate) fn itype(self) -> IType {
        match self {
            Net::V4(..) => IType::Ipv4,
            Net::V6(..) => IType::Ipv6,
        }
    }

    pub(crate) fn reserved(self) -> Option<Reserved> {
        match self {
            Net::V4(a, l) => classify_v4_net(a, l),
            Net::V6(a, l) => classify_v6_net(a, l),
        }
    }

    /// The stored form: dotted quad, RFC 5952 text, `/len` only for a real network.
    pub(crate) fn write(self, out: &mut String) {
        match self {
            Net::V4(a, l) => {
                write_v4(a, out);
                if l < 32 {
                    let _ = write!(out, "/{l}");
                }
            }
            Net::V6(a, l) => {
                let _ = write!(out, "{}", Ipv6Addr::from(a));
                if l < 128 {
                    let _ = write!(out, "/{l}");
                }
            }
        }
    }

    pub(crate) fn is_network(self) -> bool {
        match self {
            Net::V4(_, l) => l < 32,
            Net::V6(_, l) => l < 128,
        }
    }
}

pub(crate) fn write_v4(a: u32, out: &mut String) {
    let mut buf = itoa_u8_buf();
    for (i, o) in a.to_be_bytes().iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(fmt_u8(*o, &mut buf));
    }
}

fn itoa_u8_buf() -> [u8; 3] {
    [0; 3]
}

fn fmt_u8(v: u8, buf: &mut [u8; 3]) -> &str {
    let mut n = 0;
    if v >= 100 {
        buf[n] = b'0' + v / 100;
        n += 1;
    }
    if v >= 10 {
        buf[n] = b'0' + (v / 10) % 10;
        n += 1;
    }
    buf[n] = b'0' + v % 10;
    n += 1;
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[..n]).unwrap_or("0")
}

/// Dotted-quad IPv4: exactly four decimal octets of one to three digits. Zero-padded octets are
/// decimal (`051` is 51), never octal. Returns the address and whether any octet was padded.
#[inline]
pub(crate) fn parse_v4(s: &[u8]) -> Option<(u32, bool)> {
    if s.len() < 7 || s.len() > 15 {
        return None;
    }
    let mut addr: u32 = 0;
    let mut octet: u32 = 0;
    let mut digits = 0u8;
    let mut dots = 0u8;
    let mut padded = false;
    let mut first_zero = false;
    for &b in s {
        match b {
            b'0'..=b'9' => {
                if digits == 0 {
                    first_zero = b == b'0';
                } else if first_zero {
                    padded = true;
                }
                digits += 1;
                octet = octet * 10 + (b - b'0') as u32;
                if digits > 3 || octet > 255 {
                    return None;
                }
            }
            b'.' => {
                if digits == 0 || dots == 3 {
                    return None;
                }
                addr = (addr << 8) | octet;
                octet = 0;
                digits = 0;
                dots += 1;
            }
            _ => return None,
        }
    }
    if digits == 0 || dots != 3 {
        return None;
    }
    Some(((addr << 8) | octet, padded))
}

/// IPv6 text (any valid RFC 4291 form, with an optional embedded dotted quad, whose octets may
/// be zero-padded). Zone indexes (`%eth0`) are local to one host and are not accepted.
pub(crate) fn parse_v6(s: &str) -> Option<(u128, bool)> {
    if s.len() < 2 || s.len() > 45 || s.contains('%') {
        return None;
    }
    if let Some(dot) = s.find('.') {
        let colon = s[..dot].rfind(':')?;
        let (v4, padded) = parse_v4(&s.as_bytes()[colon + 1..])?;
        let head = &s[..=colon];
        let text = format!("{head}{:x}:{:x}", v4 >> 16, v4 & 0xffff);
        return text.parse::<Ipv6Addr>().ok().map(|a| (u128::from(a), padded));
    }
    s.parse::<Ipv6Addr>().ok().map(|a| (u128::from(a), false))
}

fn parse_prefix(s: &str, max: u8) -> Result<u8, Rejection> {
    let bad = || Rejection::new(RejectCode::InvalidPrefix, format!("prefix length `/{s}` is not a number from 0 to {max}"));
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u16 = s.parse().map_err(|_| bad())?;
    if n > max as u16 {
        return Err(bad());
    }
    Ok(n as u8)
}

/// A dotted netmask (`255.255.255.0`) as a prefix length, when its one bits are contiguous.
fn netmask_len(s: &str) -> Option<u8> {
    let (m, _) = parse_v4(s.as_bytes())?;
    let len = m.leading_ones();
    (m == mask_v4(len as u8)).then_some(len as u8)
}

/// Parse an address or CIDR (`a.b.c.d`, `a.b.c.d/n`, `a.b.c.d/255.255.0.0`, IPv6, IPv6/n),
/// normalising mapped addresses, masking host bits and enforcing the minimum prefix.
pub(crate) fn parse_net(
    s: &str,
    min_v4: u8,
    min_v6: u8,
    flags: &mut Vec<Flag>,
) -> Result<Net, Rejection> {
    let (addr_s, prefix_s) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let net = if let Some((a, padded)) = parse_v4(addr_s.as_bytes()) {
        if padded {
            add_flag(flags, Flag::LeadingZeros);
        }
        let len = match prefix_s {
            None => 32,
            Some(p) if p.contains('.') => netmask_len(p).ok_or_else(|| {
                Rejection::new(RejectCode::InvalidPrefix, format!("`{p}` is not a contiguous netmask"))
            })?,
            Some(p) => parse_prefix(p, 32)?,
        };
        Net::V4(a, len)
    } else if addr_s.contains(':') {
        let (a, padded) = parse_v6(addr_s).ok_or_else(|| {
            Rejection::new(RejectCode::InvalidAddress, format!("`{addr_s}` is not a valid IPv6 address"))
        })?;
        if padded {
            add_flag(flags, Flag::LeadingZeros);
        }
        let len = match prefix_s {
            None => 128,
            Some(p) => parse_prefix(p, 128)?,
        };
        let mapped = Ipv6Addr::from(a).to_ipv4_mapped();
        match mapped {
            Some(v4) if len >= 96 => {
                add_flag(flags, Flag::Mapped);
                Net::V4(u32::from(v4), len - 96)
            }
            _ => Net::V6(a, len),
        }
    } else {
        return Err(Rejection::new(
            RejectCode::InvalidAddress,
            format!("`{addr_s}` is not a valid IPv4 address (four decimal octets 0-255)"),
        ));
    };
    let net = match net {
        Net::V4(a, len) => {
            if len < min_v4 {
                return Err(too_short(len, min_v4, "IPv4"));
            }
            let m = mask_v4(len);
            if a & !m != 0 {
                add_flag(flags, Flag::HostBitsMasked);
            }
            Net::V4(a & m, len)
        }
        Net::V6(a, len) => {
            if len < min_v6 {
                return Err(too_short(len, min_v6, "IPv6"));
            }
            let m = mask_v6(len);
            if a & !m != 0 {
                add_flag(flags, Flag::HostBitsMasked);
            }
            Net::V6(a & m, len)
        }
    };
    if net.is_network() {
        add_flag(flags, Flag::Cidr);
    }
    Ok(net)
}

fn too_short(len: u8, min: u8, fam: &str) -> Rejection {
    Rejection::new(
        RejectCode::PrefixTooShort,
        format!("{fam} prefix /{len} is shorter than the configured minimum /{min}"),
    )
}

pub(crate) fn add_flag(flags: &mut Vec<Flag>, f: Flag) {
    if !flags.contains(&f) {
        flags.push(f);
    }
}

/// The inclusive range of addresses a network covers, as u128 (IPv4 in the low 32 bits).
pub(crate) fn v4_range(a: u32, len: u8) -> (u32, u32) {
    let m = mask_v4(len);
    (a & m, (a & m) | !m)
}

pub(crate) fn v6_range(a: u128, len: u8) -> (u128, u128) {
    let m = mask_v6(len);
    (a & m, (a & m) | !m)
}

/// Parse a stored value back into a network (used by the allowlist for indicator values).
pub(crate) fn net_of_value(itype: IType, value: &str) -> Option<Net> {
    let (a, l) = match value.find('/') {
        Some(i) => (&value[..i], value[i + 1..].parse::<u8>().ok()?),
        None => (value, if itype == IType::Ipv4 { 32 } else { 128 }),
    };
    match itype {
        IType::Ipv4 => parse_v4(a.as_bytes()).map(|(x, _)| Net::V4(x, l.min(32))),
        IType::Ipv6 => a.parse::<Ipv6Addr>().ok().map(|x| Net::V6(u128::from(x), l.min(128))),
        _ => None,
    }
}
