//! BIND response policy zones (RPZ).
//!
//! `$TTL`, SOA and NS first; then each domain as `evil.example CNAME .` plus
//! `*.evil.example CNAME .` (NXDOMAIN for the name and everything under it), and each address
//! or CIDR as an `rpz-ip` trigger: prefix length, then the address reversed
//! (`32.7.100.51.198.rpz-ip`; IPv6 by 16-bit groups with `zz` for the `::` run,
//! `128.1.zz.db8.2001.rpz-ip`). Names are relative to the zone's origin. `rpz-ip` matches
//! addresses in DNS *answers*, so it blocks names resolving into a listed network; it does
//! nothing against scanners connecting to you (use the ipset or nginx exports for that).

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{one_line, split_prefix, Format, Meta, Record};
use crate::{format_time, IType};

/// Seconds, for `$TTL` and the SOA's negative-caching TTL.
pub const TTL: u32 = 300;

pub struct Rpz {
    source: String,
    zone: String,
    generated: chrono::DateTime<chrono::Utc>,
}

impl Rpz {
    pub fn boxed(meta: &Meta) -> Box<dyn Format> {
        let zone = meta.zone.trim_end_matches('.').to_string() + ".";
        Box::new(Rpz { source: one_line(&meta.source), zone, generated: meta.generated })
    }

    /// The owner names of a record (relative to the zone), or None when it has none.
    fn owners(&self, r: &Record) -> Option<Vec<String>> {
        let names = match r.itype {
            IType::Fqdn => {
                let ok = r.value.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                if !ok {
                    return None;
                }
                vec![r.value.to_string(), format!("*.{}", r.value)]
            }
            IType::Ipv4 | IType::Ipv6 => vec![rpz_ip(r)?],
            _ => return None,
        };
        // Every name, with the zone appended, must fit the 253-character limit of a domain name.
        names.iter().all(|n| n.len() + 1 + self.zone.len() <= 254).then_some(names)
    }
}

/// The `rpz-ip` owner name of an address or CIDR.
pub fn rpz_ip(r: &Record) -> Option<String> {
    let (addr, prefix) = split_prefix(r);
    match r.itype {
        IType::Ipv4 => {
            let a: Ipv4Addr = addr.parse().ok()?;
            let o = a.octets();
            Some(format!("{}.{}.{}.{}.{}.rpz-ip", prefix.unwrap_or(32), o[3], o[2], o[1], o[0]))
        }
        IType::Ipv6 => {
            let a: Ipv6Addr = addr.parse().ok()?;
            let g = a.segments();
            // The longest run of two or more zero groups becomes `zz` (the first, on a tie).
            let (mut best, mut best_len, mut i) = (0, 0, 0);
            while i < 8 {
                if g[i] == 0 {
                    let start = i;
                    while i < 8 && g[i] == 0 {
                        i += 1;
                    }
                    if i - start > best_len {
                        best = start;
                        best_len = i - start;
                    }
                } else {
                    i += 1;
                }
            }
            let mut labels: Vec<String> = Vec::new();
            let mut j = 8;
            while j > 0 {
                j -= 1;
                if best_len >= 2 && j == best + best_len - 1 {
                    labels.push("zz".into());
                    j = best;
                    continue;
                }
                labels.push(format!("{:x}", g[j]));
            }
            Some(format!("{}.{}.rpz-ip", prefix.unwrap_or(128), labels.join(".")))
        }
        _ => None,
    }
}

impl Format for Rpz {
    fn accepts(&self, r: &Record) -> bool {
        self.owners(r).is_some()
    }

    fn header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        // The serial is the export time in seconds: it grows with every export, as secondaries need.
        let serial = self.generated.timestamp().clamp(1, u32::MAX as i64);
        writeln!(out, "; apiary response policy zone for {}, generated {}", self.source, format_time(self.generated))?;
        writeln!(out, "$TTL {TTL}")?;
        writeln!(out, "@ IN SOA localhost. hostmaster.localhost. ( {serial} 3600 600 604800 {TTL} )")?;
        writeln!(out, "@ IN NS localhost.")
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        for name in self.owners(r).unwrap_or_default() {
            writeln!(out, "{name} CNAME .")?;
        }
        Ok(())
    }

    fn footer(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn rec(value: &'static str, itype: IType) -> Record<'static> {
        let t = Utc::now();
        Record { value, itype, feed: "a/b", firsttime: t, lasttime: t, reporttime: t, count: 1, tags: &[], ports: &[], protocol: None, description: None, tlp: "green", confidence: None, held: false }
    }

    #[test]
    fn rpz_ip_names() {
        for (value, itype, want) in [
            ("198.51.100.7", IType::Ipv4, "32.7.100.51.198.rpz-ip"),
            ("203.0.113.0/24", IType::Ipv4, "24.0.113.0.203.rpz-ip"),
            ("2001:db8::1", IType::Ipv6, "128.1.zz.db8.2001.rpz-ip"),
            ("2001:db8::/32", IType::Ipv6, "32.zz.db8.2001.rpz-ip"),
            ("2001:db8:0:1:0:0:0:5", IType::Ipv6, "128.5.zz.1.0.db8.2001.rpz-ip"),
            ("2001:db8:1:2:3:4:5:6", IType::Ipv6, "128.6.5.4.3.2.1.db8.2001.rpz-ip"),
        ] {
            assert_eq!(rpz_ip(&rec(value, itype)).as_deref(), Some(want), "{value}");
        }
    }
}
