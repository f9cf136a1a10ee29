//! Suricata IP reputation (`iprep`): a categories file (`id,shortname,description`, ids 1–60)
//! and a reputation file (`ip-or-cidr,category,score`, scores 1–127).
//!
//! Categories come from tags through the fixed table [`CATEGORIES`]; a value whose tags name
//! no category gets [`GENERIC`]. A value with tags in several categories gets one line each.
//! Score: the publisher's claimed confidence (0–10) scaled to 1–127; [`DEFAULT_SCORE`] when
//! there is no claim. (The hub's own scores replace the claim once scoring exists.)

use std::io::{self, Write};

use super::{Format, Meta, Record};

/// One category of the categories file, with the tags that select it.
pub struct Category {
    pub id: u8,
    pub shortname: &'static str,
    pub description: &'static str,
    pub tags: &'static [&'static str],
}

pub const CATEGORIES: &[Category] = &[
    Category { id: 1, shortname: "Scanner", description: "Scanning hosts", tags: &["scanner", "scan", "scanning", "portscan"] },
    Category { id: 2, shortname: "BruteForce", description: "Password guessing (SSH, Telnet, web logins)", tags: &["bruteforce", "brute-force", "brute_force", "ssh-bruteforce"] },
    Category { id: 3, shortname: "Malware", description: "Malware distribution and payload hosts", tags: &["malware", "payload", "download", "dropper"] },
    Category { id: 4, shortname: "CnC", description: "Command and control servers", tags: &["c2", "cnc", "c&c", "command-and-control", "botnet-c2"] },
    Category { id: 5, shortname: "Botnet", description: "Botnet members", tags: &["botnet", "bot"] },
    Category { id: 6, shortname: "Phishing", description: "Phishing infrastructure", tags: &["phishing", "phish"] },
    Category { id: 7, shortname: "Spam", description: "Spam sources", tags: &["spam"] },
    Category { id: 8, shortname: "Exploit", description: "Exploitation attempts", tags: &["exploit", "exploitation", "rce"] },
];

/// Category of values whose tags name no other category.
pub const GENERIC: Category =
    Category { id: 60, shortname: "Apiary", description: "Reported to the Apiary hub, no specific category", tags: &[] };

/// Reputation score for a value without a confidence claim.
pub const DEFAULT_SCORE: u8 = 64;

/// The categories file.
pub fn categories() -> String {
    let mut s = String::new();
    for c in CATEGORIES.iter().chain(std::iter::once(&GENERIC)) {
        s.push_str(&format!("{},{},{}\n", c.id, c.shortname, c.description));
    }
    s
}

/// The score (1–127) of a claimed confidence (0–10).
pub fn score(confidence: Option<f64>) -> u8 {
    match confidence {
        Some(c) if c.is_finite() => (c.clamp(0.0, 10.0) * 12.7).round().clamp(1.0, 127.0) as u8,
        _ => DEFAULT_SCORE,
    }
}

/// The category ids of a record's tags, in table order, or the generic one.
pub fn category_ids(tags: &[String]) -> Vec<u8> {
    let ids: Vec<u8> = CATEGORIES
        .iter()
        .filter(|c| tags.iter().any(|t| c.tags.iter().any(|ct| t.eq_ignore_ascii_case(ct))))
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        vec![GENERIC.id]
    } else {
        ids
    }
}

pub struct IpRep;

impl IpRep {
    pub fn boxed(_: &Meta) -> Box<dyn Format> {
        Box::new(IpRep)
    }
}

impl Format for IpRep {
    fn accepts(&self, r: &Record) -> bool {
        r.is_address()
    }

    fn header(&mut self, _: &mut dyn Write) -> io::Result<()> {
        // Suricata reads every line as data: no comment header.
        Ok(())
    }

    fn record(&mut self, r: &Record, out: &mut dyn Write) -> io::Result<()> {
        let score = score(r.confidence);
        for id in category_ids(r.tags) {
            writeln!(out, "{},{id},{score}", r.value)?;
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

    #[test]
    fn scores_and_categories() {
        assert_eq!(score(Some(10.0)), 127);
        assert_eq!(score(Some(0.0)), 1);
        assert_eq!(score(Some(5.0)), 64);
        assert_eq!(score(Some(f64::NAN)), DEFAULT_SCORE);
        assert_eq!(score(None), DEFAULT_SCORE);
        assert_eq!(category_ids(&["SSH".into(), "Scanner".into(), "c2".into()]), vec![1, 4]);
        assert_eq!(category_ids(&[]), vec![60]);
        for c in CATEGORIES {
            assert!(c.id >= 1 && c.id <= 60 && !c.shortname.contains(','));
        }
    }
}
