//! A Cowrie session: every event of one (sensor, session) folded into one record.

use super::event::Event;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// How far an attacker got in a session, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    /// A TCP connection and nothing more.
    Connect,
    /// The client spoke the protocol (an SSH version string or key exchange).
    Handshake,
    /// Credentials were tried.
    AuthAttempt,
    /// A login succeeded (or an authenticated channel such as a tunnel was opened).
    Login,
    /// Commands were entered.
    Commands,
    /// A file was downloaded or uploaded.
    Payload,
}

impl Depth {
    pub fn as_str(self) -> &'static str {
        match self {
            Depth::Connect => "connect",
            Depth::Handshake => "handshake",
            Depth::AuthAttempt => "auth_attempt",
            Depth::Login => "login",
            Depth::Commands => "commands",
            Depth::Payload => "payload",
        }
    }
}

/// One login attempt, in the order tried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Credential {
    pub username: Option<String>,
    /// Absent for public-key attempts.
    pub password: Option<String>,
    /// The key fingerprint of a public-key attempt.
    pub fingerprint: Option<String>,
    pub success: bool,
    pub time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// `cowrie.command.input`: the line as typed.
    Input,
    /// `cowrie.command.success` (old versions): a command the shell knew.
    Found,
    /// `cowrie.command.failed`: a command the shell did not know.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    pub input: String,
    pub status: CommandStatus,
    pub time: Option<DateTime<Utc>>,
}

/// A file fetched by the attacker (`wget`, `curl`, `tftp`, ...) or captured from a shell redirect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Download {
    /// Absent for redirect captures (`echo ... > file`).
    pub url: Option<String>,
    /// SHA-256 of the content, when it arrived.
    pub shasum: Option<String>,
    pub outfile: Option<String>,
    pub destfile: Option<String>,
    /// Cowrie's own "seen before on this honeypot" flag.
    pub duplicate: Option<bool>,
    /// Why it failed (`cowrie.session.file_download.failed`).
    pub error: Option<String>,
    pub time: Option<DateTime<Utc>>,
}

/// A file the attacker uploaded (SFTP/SCP).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upload {
    pub filename: Option<String>,
    pub shasum: Option<String>,
    pub outfile: Option<String>,
    pub time: Option<DateTime<Utc>>,
}

/// A `direct-tcpip` target: the attacker used the honeypot as a proxy to this host and port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tunnel {
    /// As sent by the client: an address or a host name.
    pub host: String,
    pub port: Option<u16>,
    pub requests: u64,
    pub data_events: u64,
    pub data_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct TtyLog {
    pub path: Option<String>,
    pub size: Option<u64>,
    /// SHA-256 of the tty log: the same value on two sensors means the same terminal interaction.
    pub shasum: Option<String>,
}

/// A session as assembled from its events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    pub sensor: String,
    pub session: String,
    /// Cowrie's per-honeypot `uuid`, when logged.
    pub sensor_uuid: Option<String>,
    /// The attacker's address as logged (normalised later by the core).
    pub src_ip: Option<String>,
    pub src_port: Option<u16>,
    /// The honeypot's address and port (often private: behind NAT or in a container).
    pub dst_ip: Option<String>,
    pub dst_port: Option<u16>,
    /// `ssh` or `telnet`. Before Cowrie logged `protocol` (2017), inferred from the event's
    /// `system` field or from an SSH handshake; see `protocol_inferred`.
    pub protocol: Option<String>,
    pub protocol_inferred: bool,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Seconds, from `cowrie.session.closed` (`duration` float or string, or `duration_ms`).
    pub duration: Option<f64>,
    pub client_version: Option<String>,
    pub hassh: Option<String>,
    pub credentials: Vec<Credential>,
    pub logged_in: bool,
    pub commands: Vec<Command>,
    pub downloads: Vec<Download>,
    pub uploads: Vec<Upload>,
    pub tunnels: Vec<Tunnel>,
    pub ttylog: Option<TtyLog>,
    pub arch: Option<String>,
    /// Events folded into this session.
    pub events: u64,
    /// True once `cowrie.session.closed` was read.
    pub closed: bool,
    /// Where the session's first event was read: (file, line).
    pub first_seen_at: (String, u64),
    /// Fields this reader does not know, first value per name (T-Pot's `geoip`, ...).
    pub other_fields: BTreeMap<String, serde_json::Value>,
    /// Events with an eventid this reader does not know, kept as sent (at most
    /// [`MAX_OTHER_EVENTS`] per session; `other_events_dropped` counts the rest).
    pub other_events: Vec<serde_json::Value>,
    pub other_events_dropped: u64,
}

/// Bound on the unknown events kept raw per session, so one odd session cannot eat memory.
pub const MAX_OTHER_EVENTS: usize = 64;

impl Session {
    pub fn new(sensor: &str, session: &str, file: &str, line: u64) -> Session {
        Session {
            sensor: sensor.to_owned(),
            session: session.to_owned(),
            sensor_uuid: None,
            src_ip: None,
            src_port: None,
            dst_ip: None,
            dst_port: None,
            protocol: None,
            protocol_inferred: false,
            start: None,
            end: None,
            duration: None,
            client_version: None,
            hassh: None,
            credentials: Vec::new(),
            logged_in: false,
            commands: Vec::new(),
            downloads: Vec::new(),
            uploads: Vec::new(),
            tunnels: Vec::new(),
            ttylog: None,
            arch: None,
            events: 0,
            closed: false,
            first_seen_at: (file.to_owned(), line),
            other_fields: BTreeMap::new(),
            other_events: Vec::new(),
            other_events_dropped: 0,
        }
    }

    /// How deep the attacker got.
    pub fn depth(&self) -> Depth {
        let payload = self.downloads.iter().any(|d| d.shasum.is_some())
            || self.uploads.iter().any(|u| u.shasum.is_some());
        if payload {
            Depth::Payload
        } else if !self.commands.is_empty() {
            Depth::Commands
        } else if self.logged_in || !self.tunnels.is_empty() {
            Depth::Login
        } else if !self.credentials.is_empty() {
            Depth::AuthAttempt
        } else if self.client_version.is_some() || self.hassh.is_some() {
            Depth::Handshake
        } else {
            Depth::Connect
        }
    }

    /// Duration in seconds: the logged one, else end − start.
    pub fn duration_secs(&self) -> Option<f64> {
        self.duration.or_else(|| match (self.start, self.end) {
            (Some(s), Some(e)) => Some((e - s).num_microseconds()? as f64 / 1e6),
            _ => None,
        })
    }

    /// Fold one event in. `time` is the event's parsed timestamp; `raw` the line (kept for
    /// unknown eventids). Returns false when the eventid is not one this reader knows.
    pub fn apply(&mut self, ev: &Event<'_>, eventid: &str, time: Option<DateTime<Utc>>, raw: &str) -> bool {
        self.events += 1;
        if let Some(t) = time {
            if self.start.is_none_or(|s| t < s) {
                self.start = Some(t);
            }
            if self.end.is_none_or(|e| t > e) {
                self.end = Some(t);
            }
        }
        fill(&mut self.src_ip, &ev.src_ip);
        fill(&mut self.sensor_uuid, &ev.uuid);
        for (k, v) in &ev.unknown {
            if !self.other_fields.contains_key(k) {
                self.other_fields.insert(k.clone(), v.clone());
            }
        }
        if self.protocol.is_none() {
            if let Some(p) = ev.protocol.as_deref().filter(|p| !p.is_empty()) {
                self.protocol = Some(p.to_ascii_lowercase());
                self.protocol_inferred = false;
            }
        }
        let known = match eventid {
            "cowrie.session.connect" => {
                self.src_port = ev.src_port.or(self.src_port);
                fill(&mut self.dst_ip, &ev.dst_ip);
                self.dst_port = self.dst_port.or(ev.dst_port);
                if self.protocol.is_none() {
                    self.infer_protocol(ev.system.as_deref());
                }
                true
            }
            "cowrie.client.version" => {
                fill(&mut self.client_version, &ev.version);
                self.infer_ssh();
                true
            }
            "cowrie.client.kex" => {
                fill(&mut self.hassh, &ev.hassh);
                self.infer_ssh();
                true
            }
            "cowrie.login.success" | "cowrie.login.failed" | "cowrie.client.fingerprint" => {
                let success = eventid == "cowrie.login.success";
                self.logged_in |= success;
                self.credentials.push(Credential {
                    username: owned(&ev.username),
                    password: owned(&ev.password),
                    fingerprint: owned(&ev.fingerprint),
                    success,
                    time,
                });
                true
            }
            "cowrie.command.input" | "cowrie.command.success" | "cowrie.command.failed" => {
                let status = match eventid {
                    "cowrie.command.input" => CommandStatus::Input,
                    "cowrie.command.success" => CommandStatus::Found,
                    _ => CommandStatus::Unknown,
                };
                if let Some(input) = owned(&ev.input) {
                    self.commands.push(Command { input, status, time });
                }
                true
            }
            "cowrie.session.file_download" | "cowrie.session.file_download.failed" => {
                self.downloads.push(Download {
                    url: owned(&ev.url),
                    shasum: owned(&ev.shasum).map(|s| s.to_ascii_lowercase()),
                    outfile: owned(&ev.outfile),
                    destfile: owned(&ev.destfile),
                    duplicate: ev.duplicate,
                    error: owned(&ev.error).or_else(|| {
                        (eventid == "cowrie.session.file_download.failed").then(|| "failed".to_owned())
                    }),
                    time,
                });
                true
            }
            "cowrie.session.file_upload" => {
                self.uploads.push(Upload {
                    filename: owned(&ev.filename),
                    shasum: owned(&ev.shasum).map(|s| s.to_ascii_lowercase()),
                    outfile: owned(&ev.outfile),
                    time,
                });
                true
            }
            "cowrie.direct-tcpip.request" | "cowrie.direct-tcpip.data" => {
                let host = ev.dst_ip.as_deref().unwrap_or("").to_owned();
                let port = ev.dst_port;
                let t = match self.tunnels.iter_mut().find(|t| t.host == host && t.port == port) {
                    Some(t) => t,
                    None => {
                        self.tunnels.push(Tunnel { host, port, requests: 0, data_events: 0, data_bytes: 0 });
                        self.tunnels.last_mut().expect("just pushed")
                    }
                };
                if eventid.ends_with(".request") {
                    t.requests += 1;
                } else {
                    t.data_events += 1;
                    t.data_bytes += ev.data_len.unwrap_or(0) as u64;
                }
                self.infer_ssh();
                true
            }
            "cowrie.log.open" | "cowrie.log.closed" => {
                let tty = self.ttylog.get_or_insert_with(TtyLog::default);
                fill(&mut tty.path, &ev.ttylog);
                if let Some(s) = ev.size.filter(|s| *s >= 0.0) {
                    tty.size = Some(s as u64);
                }
                if let Some(h) = owned(&ev.shasum) {
                    tty.shasum = Some(h.to_ascii_lowercase());
                }
                true
            }
            "cowrie.session.closed" => {
                self.closed = true;
                self.duration = ev.duration_ms.map(|ms| ms / 1000.0).or(ev.duration).or(self.duration);
                true
            }
            "cowrie.session.params" => {
                fill(&mut self.arch, &ev.arch);
                true
            }
            // Known events that carry nothing the session keeps beyond time and address.
            "cowrie.client.size" | "cowrie.client.var" | "cowrie.session.input" | "cowrie.log.stats" => true,
            _ => {
                if self.other_events.len() < MAX_OTHER_EVENTS {
                    let v = serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()));
                    self.other_events.push(v);
                } else {
                    self.other_events_dropped += 1;
                }
                false
            }
        };
        known
    }

    fn infer_protocol(&mut self, system: Option<&str>) {
        let Some(sys) = system else { return };
        let p = if sys.contains("SSH") {
            "ssh"
        } else if sys.contains("Telnet") {
            "telnet"
        } else {
            return;
        };
        self.protocol = Some(p.to_owned());
        self.protocol_inferred = true;
    }

    /// Only SSH clients send a version string, a key exchange or a direct-tcpip request.
    fn infer_ssh(&mut self) {
        if self.protocol.is_none() {
            self.protocol = Some("ssh".to_owned());
            self.protocol_inferred = true;
        }
    }
}

fn owned(v: &Option<std::borrow::Cow<'_, str>>) -> Option<String> {
    v.as_deref().map(str::to_owned)
}

fn fill(slot: &mut Option<String>, v: &Option<std::borrow::Cow<'_, str>>) {
    if slot.is_none() {
        if let Some(s) = v.as_deref().filter(|s| !s.is_empty()) {
            *slot = Some(s.to_owned());
        }
    }
}
