//! What may leave the hub: the export rules every format, the API, the CLI and TAXII share.
//!
//! In order: special-use values never; values on an *exclude* allowlist never; a CIDR that
//! contains an excluded (or, in blocklists, a held) range never whole; *held* values not in
//! blocklists; TLP:RED only to the feed's owner and the people it was shared with; then the
//! caller's filters (TLP labels, claimed confidence, the time window on last seen).

use chrono::{DateTime, Duration, Utc};

use crate::{parse, Allowlist, IType, Indicator, ListUse, ParseOptions};

use super::Record;

/// The time window on last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    /// CIF-style defaults per type: addresses 21 days; URLs, domains, hashes and the rest 45 days.
    #[default]
    Default,
    /// Everything, however old (`--window all`).
    All,
    /// A fixed window for every type.
    Last(Duration),
}

/// Default window for addresses.
pub const IP_WINDOW_DAYS: i64 = 21;
/// Default window for everything else (URLs, domains, hashes, e-mails, ASNs).
pub const OTHER_WINDOW_DAYS: i64 = 45;

impl Window {
    /// Parse `all`, `default`, or a length: `30d`, `12h`, `90m`, `2w`, or a bare number of days.
    pub fn parse(s: &str) -> Option<Window> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "all" => return Some(Window::All),
            "default" | "" => return Some(Window::Default),
            _ => {}
        }
        let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => (&s[..i], &s[i..]),
            None => (s.as_str(), "d"),
        };
        let n: i64 = num.parse().ok().filter(|&n| n > 0 && n <= 100_000)?;
        let d = match unit {
            "d" | "day" | "days" => Duration::days(n),
            "h" | "hour" | "hours" => Duration::hours(n),
            "m" | "min" | "minutes" => Duration::minutes(n),
            "w" | "week" | "weeks" => Duration::weeks(n),
            _ => return None,
        };
        Some(Window::Last(d))
    }

    /// The window for one type; None means unlimited.
    pub fn for_type(self, itype: IType) -> Option<Duration> {
        match self {
            Window::All => None,
            Window::Last(d) => Some(d),
            Window::Default if itype.is_address() => Some(Duration::days(IP_WINDOW_DAYS)),
            Window::Default => Some(Duration::days(OTHER_WINDOW_DAYS)),
        }
    }

    /// The oldest last-seen time a query must return: for one type, or the widest window over
    /// every type when `itype` is None. None: no lower bound.
    pub fn since(self, now: DateTime<Utc>, itype: Option<IType>) -> Option<DateTime<Utc>> {
        let widest = match itype {
            Some(t) => self.for_type(t),
            None => IType::ALL.iter().map(|&t| self.for_type(t)).try_fold(Duration::zero(), |acc, d| d.map(|d| acc.max(d))),
        };
        widest.map(|d| now - d)
    }

    /// How the window reads in a header comment.
    pub fn describe(self) -> String {
        match self {
            Window::All => "all".into(),
            Window::Default => format!("default (addresses {IP_WINDOW_DAYS} days, others {OTHER_WINDOW_DAYS} days)"),
            Window::Last(d) if d.num_hours() % 24 == 0 => format!("{} days", d.num_days()),
            Window::Last(d) => format!("{} minutes", d.num_minutes()),
        }
    }
}

/// Why a record was left out of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A special-use address or network (private, loopback, documentation, ...).
    Reserved,
    /// On an exclude allowlist.
    Excluded,
    /// A CIDR that contains an allowlisted range: never exported whole.
    OverlapsAllowlisted,
    /// On a hold allowlist, and the format is a blocklist.
    Held,
    /// TLP:RED, and the reader is neither the owner nor someone it was shared with.
    Red,
    /// Not one of the TLP labels asked for.
    Tlp,
    /// Below the minimum (claimed) confidence, or no claim.
    Confidence,
    /// Last seen before the window.
    Window,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Reserved => "reserved",
            Skip::Excluded => "excluded",
            Skip::OverlapsAllowlisted => "overlaps_allowlisted",
            Skip::Held => "held",
            Skip::Red => "tlp_red",
            Skip::Tlp => "tlp",
            Skip::Confidence => "confidence",
            Skip::Window => "window",
        }
    }
}

/// The rules and filters of one export.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    pub allowlist: &'a Allowlist,
    /// Leave out held values (true for blocklist formats and the BLOCK tier).
    pub blocklist: bool,
    pub window: Window,
    /// "Now", for the window (fixed per export so one export is consistent).
    pub now: DateTime<Utc>,
    /// Only these TLP labels (`clear`, `green`, `amber`, `red`); None = every label.
    pub tlp: Option<Vec<String>>,
    /// Minimum confidence, 0–10. Until the hub scores indicators this is the publisher's own
    /// claim; records without a claim are left out when it is set.
    pub min_confidence: Option<f64>,
}

/// What the policy noted about a record it lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// On a hold allowlist (only possible outside blocklists).
    pub held: bool,
}

impl<'a> Policy<'a> {
    pub fn new(allowlist: &'a Allowlist, blocklist: bool, now: DateTime<Utc>) -> Policy<'a> {
        Policy { allowlist, blocklist, window: Window::Default, now, tlp: None, min_confidence: None }
    }

    /// Check one record. `reserved` is the special-use code stored with it (if any); `red_ok`
    /// says whether the reader is the feed's owner or someone it was shared with.
    pub fn check(&self, r: &Record, reserved: Option<&str>, red_ok: bool) -> Result<Verdict, Skip> {
        if reserved.is_some() {
            return Err(Skip::Reserved);
        }
        let label = r.tlp;
        if label.eq_ignore_ascii_case("red") && !red_ok {
            return Err(Skip::Red);
        }
        if let Some(allowed) = &self.tlp {
            let same = |a: &String| a.eq_ignore_ascii_case(label) || (a == "white" && label.eq_ignore_ascii_case("clear"));
            if !allowed.iter().any(same) {
                return Err(Skip::Tlp);
            }
        }
        if let Some(min) = self.min_confidence {
            if !r.confidence.is_some_and(|c| c >= min) {
                return Err(Skip::Confidence);
            }
        }
        if let Some(w) = self.window.for_type(r.itype) {
            if r.lasttime < self.now - w {
                return Err(Skip::Window);
            }
        }
        let mut verdict = Verdict::default();
        for listed in self.allowlist.check(&indicator_of(r)) {
            match (listed.use_, listed.overlaps) {
                (ListUse::Exclude, false) => return Err(Skip::Excluded),
                (ListUse::Exclude, true) => return Err(Skip::OverlapsAllowlisted),
                (ListUse::Hold, true) if self.blocklist => return Err(Skip::OverlapsAllowlisted),
                (ListUse::Hold, _) if self.blocklist => return Err(Skip::Held),
                (ListUse::Hold, _) => verdict.held = true,
            }
        }
        Ok(verdict)
    }
}

/// The indicator of a stored record, for allowlist checks. URLs and e-mails go through the one
/// parser again (their host or domain is needed); other stored values are already canonical.
fn indicator_of(r: &Record) -> Indicator {
    if matches!(r.itype, IType::Url | IType::Email) {
        if let Ok(ind) = parse(r.value, Some(r.itype), &ParseOptions::default()) {
            return ind;
        }
    }
    Indicator { itype: r.itype, value: r.value.to_string(), port: None, derived: Vec::new(), reserved: None, flags: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ListKind;
    use chrono::TimeZone;

    fn rec(value: &str, itype: IType, tlp: &'static str, days_ago: i64) -> Record<'static> {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let t = now - Duration::days(days_ago);
        Record {
            value: Box::leak(value.to_string().into_boxed_str()),
            itype,
            feed: "alice/scanners",
            firsttime: t,
            lasttime: t,
            reporttime: t,
            count: 1,
            tags: &[],
            ports: &[],
            protocol: None,
            description: None,
            tlp,
            confidence: Some(7.0),
            held: false,
        }
    }

    fn lists() -> Allowlist {
        let mut a = Allowlist::builtin();
        a.add_list("cdn", ListKind::Cidr, &["151.101.0.0/16"], ListUse::Hold, None).unwrap();
        a.add_list("top", ListKind::Hostname, &["google.com"], ListUse::Hold, None).unwrap();
        a.add_list("sinkholes", ListKind::Cidr, &["146.59.0.64/26"], ListUse::Exclude, None).unwrap();
        a
    }

    #[test]
    fn rules_in_order() {
        let a = lists();
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let block = Policy::new(&a, true, now);
        let data = Policy::new(&a, false, now);
        type Case<'a> = (&'a str, IType, &'a str, i64, Option<&'a str>, bool, Result<bool, Skip>, Result<bool, Skip>);
        let cases: &[Case] = &[
            // value, type, tlp, days ago, reserved, red_ok, blocklist verdict, data verdict (held?)
            ("45.155.205.233", IType::Ipv4, "green", 1, None, false, Ok(false), Ok(false)),
            ("10.1.2.3", IType::Ipv4, "green", 1, Some("private"), false, Err(Skip::Reserved), Err(Skip::Reserved)),
            ("8.8.8.8", IType::Ipv4, "green", 1, None, false, Err(Skip::Excluded), Err(Skip::Excluded)),
            ("146.59.0.70", IType::Ipv4, "green", 1, None, false, Err(Skip::Excluded), Err(Skip::Excluded)),
            // A /24 containing the excluded sinkhole /26: never whole, in any format.
            ("146.59.0.0/24", IType::Ipv4, "green", 1, None, false, Err(Skip::OverlapsAllowlisted), Err(Skip::OverlapsAllowlisted)),
            ("151.101.1.1", IType::Ipv4, "green", 1, None, false, Err(Skip::Held), Ok(true)),
            ("mail.google.com", IType::Fqdn, "green", 1, None, false, Err(Skip::Held), Ok(true)),
            ("https://google.com/x", IType::Url, "green", 1, None, false, Err(Skip::Held), Ok(true)),
            ("notgoogle.com", IType::Fqdn, "green", 1, None, false, Ok(false), Ok(false)),
            ("45.155.205.233", IType::Ipv4, "red", 1, None, false, Err(Skip::Red), Err(Skip::Red)),
            ("45.155.205.233", IType::Ipv4, "red", 1, None, true, Ok(false), Ok(false)),
            // Addresses: 21 days; domains 45.
            ("45.155.205.233", IType::Ipv4, "green", 22, None, false, Err(Skip::Window), Err(Skip::Window)),
            ("evil-domain.xyz", IType::Fqdn, "green", 22, None, false, Ok(false), Ok(false)),
            ("evil-domain.xyz", IType::Fqdn, "green", 46, None, false, Err(Skip::Window), Err(Skip::Window)),
        ];
        for (value, itype, tlp, ago, reserved, red_ok, want_block, want_data) in cases {
            let r = rec(value, *itype, tlp, *ago);
            assert_eq!(block.check(&r, *reserved, *red_ok).map(|v| v.held), *want_block, "blocklist {value}");
            assert_eq!(data.check(&r, *reserved, *red_ok).map(|v| v.held), *want_data, "data {value}");
        }
    }

    #[test]
    fn filters() {
        let a = Allowlist::builtin();
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let mut p = Policy::new(&a, true, now);
        p.window = Window::All;
        assert!(p.check(&rec("45.155.205.233", IType::Ipv4, "green", 400), None, false).is_ok());
        p.tlp = Some(vec!["white".into(), "green".into()]);
        assert!(p.check(&rec("45.155.205.233", IType::Ipv4, "clear", 1), None, false).is_ok());
        assert_eq!(p.check(&rec("45.155.205.233", IType::Ipv4, "amber", 1), None, false), Err(Skip::Tlp));
        p.tlp = None;
        p.min_confidence = Some(8.0);
        assert_eq!(p.check(&rec("45.155.205.233", IType::Ipv4, "green", 1), None, false), Err(Skip::Confidence));
        let mut unclaimed = rec("45.155.205.233", IType::Ipv4, "green", 1);
        unclaimed.confidence = None;
        assert_eq!(p.check(&unclaimed, None, false), Err(Skip::Confidence));
    }

    #[test]
    fn windows() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        assert_eq!(Window::parse("all"), Some(Window::All));
        assert_eq!(Window::parse("30"), Some(Window::Last(Duration::days(30))));
        assert_eq!(Window::parse("12h"), Some(Window::Last(Duration::hours(12))));
        assert_eq!(Window::parse("2w"), Some(Window::Last(Duration::weeks(2))));
        assert_eq!(Window::parse("-3d"), None);
        assert_eq!(Window::parse("3y"), None);
        assert_eq!(Window::Default.since(now, Some(IType::Ipv4)), Some(now - Duration::days(21)));
        assert_eq!(Window::Default.since(now, None), Some(now - Duration::days(45)));
        assert_eq!(Window::All.since(now, None), None);
    }
}
