//! `apiary sessions`, `apiary attacker`, `apiary campaigns` (offline on `--data` or through
//! `--hub`), and `apiary feed sensor add|list|remove` (on the data directory). The views are
//! the hub's own (`apiary_server::api::sessions`): offline, on the data directory, you see
//! everything, named, as an admin does; through a hub, what your token may read.

use super::admin::{runtime, split_feed, DataDir};
use super::client::Hub;
use super::import::{resolve_target, Target, Written};
use super::{count, terminal_safe};
use anyhow::{bail, Context};
use apiary_core::sessions::SessionRecord;
use apiary_server::api::sessions::{self as views, CampaignFilters, SessionFilters, Viewer};
use apiary_store::{NewSensor, Store, StoreError};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where to read from: a data directory or a hub.
#[derive(Args, Debug, Clone)]
pub struct Source {
    /// Read this data directory (offline, everything named) [env: APIARY_DATA] [default: ./apiary-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Read this store instead: sqlite:DIR or postgres://USER@HOST[:PORT]/DB [env: APIARY_STORE].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Ask the hub at this URL instead [env: APIARY_HUB].
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// API token for --hub (read scope; sensor names are shown for your own feeds).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "APIARY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the answer as JSON (the hub's API form).
    #[arg(long)]
    pub json: bool,
}

/// List honeypot sessions, newest first.
#[derive(Args, Debug)]
#[command(
    after_help = "Sessions are stored by `apiary import cowrie` and the hpfeeds broker, one per feed,
sensor and session id. Only feeds you may read are shown; sensor names and honeypot addresses
only for your own feeds (offline on --data: all of them).

Examples:
  apiary sessions --attacker 203.0.113.7 --data /srv/apiary
  apiary sessions --feed ops/honeypots --sensor pot-fra1 --limit 20
  apiary sessions --payload 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 --hub https://hub.example --json"
)]
pub struct SessionsArgs {
    /// Only this attacker's sessions (an address).
    #[arg(long, value_name = "IP")]
    pub attacker: Option<String>,
    /// Only this feed's sessions.
    #[arg(long, value_name = "USER/FEED")]
    pub feed: Option<String>,
    /// Only this sensor's sessions (a sensor of a feed you own).
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Only sessions that downloaded or uploaded this SHA-256.
    #[arg(long, value_name = "SHA256")]
    pub payload: Option<String>,
    /// At most this many (up to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub source: Source,
}

/// An attacker's timeline across sensors and networks.
#[derive(Args, Debug)]
#[command(
    after_help = "Shows first and last seen, how many sensors and how many distinct declared networks saw
the attacker, the credentials it tried, its command sequences (normalised: URLs, addresses and
numbers replaced), payloads, SSH client versions and HASSH fingerprints, the campaigns it is part
of, and its sessions in time order.

Examples:
  apiary attacker 203.0.113.7 --data /srv/apiary
  apiary attacker 2001:db8::7 --hub https://hub.example --token $TOKEN --json"
)]
pub struct AttackerArgs {
    /// The attacker's address.
    #[arg(value_name = "IP")]
    pub ip: String,
    /// Sessions listed in the timeline, at most.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub source: Source,
}

/// Attackers seen by several sensors and networks.
#[derive(Args, Debug)]
#[command(
    after_help = "The correlation across honeynets: attackers that two or more sensors saw (of the feeds you
may read), most declared networks first. Declare each sensor's network with `apiary feed sensor add`.

Examples:
  apiary attackers --data /srv/apiary
  apiary attackers --min-networks 2 --hub https://hub.example --token $TOKEN --json"
)]
pub struct AttackersArgs {
    /// Only attackers seen by at least this many sensors.
    #[arg(long, default_value_t = 2)]
    pub min_sensors: usize,
    /// Only attackers seen from at least this many declared networks.
    #[arg(long, default_value_t = 0)]
    pub min_networks: usize,
    /// At most this many (up to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub source: Source,
}

pub fn run_attackers(a: AttackersArgs) -> anyhow::Result<ExitCode> {
    let f = views::AttackerFilters {
        min_sensors: Some(a.min_sensors.to_string()),
        min_networks: Some(a.min_networks.to_string()),
        limit: Some(a.limit.to_string()),
    };
    let path = format!(
        "/api/v1/attackers?min_sensors={}&min_networks={}&limit={}",
        a.min_sensors, a.min_networks, a.limit
    );
    let v = fetch(&a.source, &path, |store, viewer| async move {
        views::attackers_view(store.as_ref(), &viewer, &f).await
    })?;
    if a.source.json {
        return print_json(&v);
    }
    println!(
        "{} seen by {} or more sensors",
        count(v["total"].as_u64().unwrap_or(0), "attacker", "attackers"),
        a.min_sensors
    );
    for x in v["items"].as_array().into_iter().flatten() {
        let names: Vec<String> = x["sensor_names"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| format!("{} {}", s(&n["feed"]), s(&n["sensor"])))
            .collect();
        println!(
            "  {:<40} {:>3} sensor(s) {:>3} network(s) {:>6} session(s)  {} .. {}  {}",
            s(&x["attacker"]),
            x["sensors"].to_string(),
            x["networks"].to_string(),
            x["sessions"].to_string(),
            time(&x["first_seen"]),
            time(&x["last_seen"]),
            names.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Campaigns: attackers linked by what they share.
#[derive(Args, Debug)]
#[command(
    after_help = "A campaign is a link key shared by two or more attackers: the same payload (SHA-256), the
same tty log (SHA-256), the same normalised command sequence (two commands or more), or the same
SSH client fingerprint (HASSH) trying the same credential list in the same order. Its id is
derived from the key, so it is the same on every run and every hub.

Examples:
  apiary campaigns --data /srv/apiary
  apiary campaigns --kind payload --min-attackers 3 --json
  apiary campaigns c1f0e2d3c4b5a6978 --hub https://hub.example --token $TOKEN"
)]
pub struct CampaignsArgs {
    /// Show this campaign (its attackers, sensors, and what links them).
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// Only campaigns of this kind: payload, ttylog, commands, hassh_credentials.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only campaigns of at least this many attackers.
    #[arg(long, default_value_t = 2)]
    pub min_attackers: usize,
    /// At most this many (up to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub source: Source,
}

/// Percent-encode a query or path part.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query_string(params: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Answer from the data directory (as an admin) or the hub.
fn fetch<F, Fut>(src: &Source, path: &str, offline: F) -> anyhow::Result<Value>
where
    F: FnOnce(std::sync::Arc<dyn Store>, Viewer) -> Fut,
    Fut: std::future::Future<Output = Result<Value, apiary_server::ApiError>>,
{
    match resolve_target(&src.hub, &src.data, &src.store, &src.token)? {
        Target::Hub { url, token } => {
            let hub = Hub::new(&url, token)?;
            hub.call(reqwest::Method::GET, path, None).map_err(|e| match e {
                // Names the hub already.
                super::client::HubError::Transport { .. } => anyhow::Error::new(e),
                _ => anyhow::Error::new(e).context(format!("the hub at {}", hub.base())),
            })
        }
        Target::Data(url) => {
            let store = url.open()?;
            let rt = runtime()?;
            rt.block_on(async {
                let viewer = Viewer::everything(store.list_feeds(None).await?);
                offline(store.clone(), viewer)
                    .await
                    .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))
            })
        }
    }
}

fn time(v: &Value) -> String {
    v.as_str()
        .map(|t| t.get(..19).unwrap_or(t).replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => terminal_safe(x).into_owned(),
        Value::Null => "-".into(),
        other => terminal_safe(&other.to_string()).into_owned(),
    }
}

fn print_json(v: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

fn session_line(x: &Value) -> String {
    let sensor = x
        .get("sensor")
        .map(|v| format!(" {}", s(v)))
        .unwrap_or_default();
    let creds = x["credentials"].as_array().map_or(0, Vec::len);
    let cmds = x["commands"].as_array().map_or(0, Vec::len);
    let payloads = x["downloads"]
        .as_array()
        .into_iter()
        .chain(x["uploads"].as_array())
        .flatten()
        .filter(|t| t.get("sha256").is_some())
        .count();
    format!(
        "{}  {}{}  {}:{}  {}  {}  {} credential(s), {} command(s), {} payload(s)",
        time(&x["start"]),
        s(&x["feed"]),
        sensor,
        s(&x["attacker"]),
        s(&x["attacker_port"]),
        s(&x["protocol"]),
        s(&x["depth"]),
        creds,
        cmds,
        payloads
    )
}

pub fn run_sessions(a: SessionsArgs) -> anyhow::Result<ExitCode> {
    let f = SessionFilters {
        attacker: a.attacker.clone(),
        feed: a.feed.clone(),
        sensor: a.sensor.clone(),
        payload: a.payload.clone(),
        limit: Some(a.limit.to_string()),
    };
    let path = format!(
        "/api/v1/sessions{}",
        query_string(&[
            ("attacker", a.attacker.clone()),
            ("feed", a.feed.clone()),
            ("sensor", a.sensor.clone()),
            ("payload", a.payload.clone()),
            ("limit", Some(a.limit.to_string())),
        ])
    );
    let v = fetch(&a.source, &path, |store, viewer| async move {
        views::sessions_view(store.as_ref(), &viewer, &f, &Default::default()).await
    })?;
    if a.source.json {
        return print_json(&v);
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("no sessions");
    }
    for x in &items {
        println!("{}", session_line(x));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_sensors(v: &Value) {
    println!("  seen by       {}", sensor_summary(v));
    for n in v["sensor_names"].as_array().into_iter().flatten() {
        println!(
            "    {} {}  {}",
            s(&n["feed"]),
            s(&n["sensor"]),
            s(&n["network"])
        );
    }
}

/// `2 sensors (none in a declared network)`, `3 sensors in 2 declared networks`,
/// `3 sensors: 2 in 1 declared network, 1 without a declared network`.
fn sensor_summary(v: &Value) -> String {
    let sensors = v["sensors"].as_u64().unwrap_or(0);
    let networks = v["networks"].as_u64().unwrap_or(0);
    let undeclared = v["undeclared_sensors"].as_u64().unwrap_or(0).min(sensors);
    let declared = sensors - undeclared;
    let all = count(sensors, "sensor", "sensors");
    let nets = count(networks, "declared network", "declared networks");
    if sensors == 0 {
        "no sensor".into()
    } else if declared == 0 {
        format!("{all} (none in a declared network)")
    } else if undeclared == 0 {
        format!("{all} in {nets}")
    } else {
        format!("{all}: {declared} in {nets}, {undeclared} without a declared network")
    }
}

pub fn run_attacker(a: AttackerArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/attackers/{}?limit={}", enc(&a.ip), a.limit);
    let (ip, limit) = (a.ip.clone(), a.limit);
    let v = fetch(&a.source, &path, |store, viewer| async move {
        views::attacker_view(store.as_ref(), &viewer, &ip, limit, &Default::default()).await
    })?;
    if a.source.json {
        return print_json(&v);
    }
    println!("attacker {}", s(&v["attacker"]));
    println!("  first seen    {}", time(&v["first_seen"]));
    println!("  last seen     {}", time(&v["last_seen"]));
    println!(
        "  sessions      {} (deepest: {}, {})",
        v["sessions"],
        s(&v["deepest"]),
        count(v["logins"].as_u64().unwrap_or(0), "login", "logins")
    );
    print_sensors(&v);
    let list = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            println!("  {title}");
            for i in items {
                println!("    {i}");
            }
        }
    };
    list(
        "credentials tried",
        v["credentials"]
            .as_array()
            .into_iter()
            .flatten()
            .take(20)
            .map(|c| {
                let secret = c
                    .get("password")
                    .or(c.get("fingerprint"))
                    .map(s)
                    .unwrap_or_default();
                let ok = if c["success"] == true {
                    "  (logged in)"
                } else {
                    ""
                };
                format!("{} / {}  ×{}{ok}", s(&c["username"]), secret, c["times"])
            })
            .collect(),
    );
    list(
        "command sequences",
        v["command_sequences"]
            .as_array()
            .into_iter()
            .flatten()
            .take(10)
            .map(|c| {
                let cmds: Vec<String> = c["normalised"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect();
                format!("×{}  {}", c["sessions"], cmds.join(" ⏎ "))
            })
            .collect(),
    );
    list(
        "payloads",
        v["payloads"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let urls: Vec<String> = p["urls"].as_array().into_iter().flatten().map(s).collect();
                format!("{}  {}", s(&p["sha256"]), urls.join(" "))
            })
            .collect(),
    );
    let counts = |m: &Value| -> Vec<String> {
        m.as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| format!("{}  ×{n}", terminal_safe(k)))
            .collect()
    };
    list("SSH client versions", counts(&v["client_versions"]));
    list("HASSH", counts(&v["hassh"]));
    list(
        "campaigns",
        v["campaigns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{}  {} shared with {}",
                    s(&c["id"]),
                    s(&c["kind"]),
                    count(c["attackers"].as_u64().unwrap_or(1).saturating_sub(1), "other attacker", "other attackers")
                )
            })
            .collect(),
    );
    list(
        "timeline",
        v["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .map(session_line)
            .collect(),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_campaigns(a: CampaignsArgs) -> anyhow::Result<ExitCode> {
    if let Some(id) = a.id.clone() {
        let path = format!("/api/v1/campaigns/{}", enc(&id));
        let v = fetch(&a.source, &path, |store, viewer| async move {
            views::campaign_view(store.as_ref(), &viewer, &id).await
        })?;
        if a.source.json {
            return print_json(&v);
        }
        println!("campaign {} ({})", s(&v["id"]), s(&v["kind"]));
        println!("  key           {}", s(&v["key"]));
        println!(
            "  attackers     {}  sessions {}",
            v["attackers"], v["sessions"]
        );
        println!(
            "  from          {} to {}",
            time(&v["first_seen"]),
            time(&v["last_seen"])
        );
        print_sensors(&v);
        for (k, title) in [
            ("commands", "commands"),
            ("credentials", "credentials"),
            ("urls", "urls"),
        ] {
            if let Some(items) = v[k].as_array() {
                println!("  {title}");
                for i in items {
                    println!("    {}", s(i));
                }
            }
        }
        if !v["hassh"].is_null() {
            println!("  hassh         {}", s(&v["hassh"]));
        }
        println!("  attacker list");
        for x in v["attacker_list"].as_array().into_iter().flatten() {
            println!("    {}", s(x));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let f = CampaignFilters {
        kind: a.kind.clone(),
        min_attackers: Some(a.min_attackers.to_string()),
        limit: Some(a.limit.to_string()),
    };
    let path = format!(
        "/api/v1/campaigns{}",
        query_string(&[
            ("kind", a.kind.clone()),
            ("min_attackers", Some(a.min_attackers.to_string())),
            ("limit", Some(a.limit.to_string())),
        ])
    );
    let v = fetch(&a.source, &path, |store, viewer| async move {
        views::campaigns_view(store.as_ref(), &viewer, &f).await
    })?;
    if a.source.json {
        return print_json(&v);
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    println!(
        "{} campaign(s){}",
        v["total"],
        if (items.len() as u64) < v["total"].as_u64().unwrap_or(0) {
            format!(", the first {}", items.len())
        } else {
            String::new()
        }
    );
    if !items.is_empty() {
        println!(
            "{:<18} {:<18} {:>9} {:>8} {:>7} {:>8}  {:<19}  key",
            "id", "kind", "attackers", "sessions", "sensors", "networks", "last seen"
        );
    }
    for c in &items {
        let key = s(&c["key"]);
        println!(
            "{:<18} {:<18} {:>9} {:>8} {:>7} {:>8}  {:<19}  {}",
            s(&c["id"]),
            s(&c["kind"]),
            c["attackers"].to_string(),
            c["sessions"].to_string(),
            c["sensors"].to_string(),
            c["networks"].to_string(),
            time(&c["last_seen"]),
            key.get(..24).unwrap_or(&key)
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- apiary import cowrie --hub

/// Sessions per POST (the hub takes up to 10,000; this keeps a request well under its body limit).
const SESSIONS_PER_POST: usize = 1_000;

/// POST sessions to `owner/feed` on a hub, waiting on 429/503, halving on 413.
pub(super) fn post_sessions(
    hub: &Hub,
    owner: &str,
    feed: &str,
    sessions: &[SessionRecord],
    w: &mut Written,
) -> anyhow::Result<()> {
    for chunk in sessions.chunks(SESSIONS_PER_POST) {
        post_chunk(hub, owner, feed, chunk, w)?;
    }
    Ok(())
}

fn post_chunk(
    hub: &Hub,
    owner: &str,
    feed: &str,
    chunk: &[SessionRecord],
    w: &mut Written,
) -> anyhow::Result<()> {
    use super::client::HubError;
    let path = format!("/api/v1/feeds/{}/{}/sessions", enc(owner), enc(feed));
    let body = serde_json::to_value(chunk)?;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match hub.call(reqwest::Method::POST, &path, Some(&body)) {
            Ok(v) => {
                w.sessions.add(apiary_store::SessionsOutcome {
                    stored: v["stored"].as_u64().unwrap_or(0),
                    replaced: v["replaced"].as_u64().unwrap_or(0),
                    duplicates: v["duplicates"].as_u64().unwrap_or(0),
                });
                return Ok(());
            }
            // Every session refused: counted by the sightings already; nothing more to do.
            Err(HubError::Status { status: 422, .. }) => return Ok(()),
            Err(HubError::Status { status: 413, .. }) if chunk.len() > 1 => {
                let (a, b) = chunk.split_at(chunk.len() / 2);
                post_chunk(hub, owner, feed, a, w)?;
                return post_chunk(hub, owner, feed, b, w);
            }
            Err(HubError::Status {
                status: 429 | 502 | 503 | 504,
                retry_after,
                ..
            }) if attempt <= 20 => {
                let wait = retry_after
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_millis(250 << attempt.min(5)));
                std::thread::sleep(wait.min(Duration::from_secs(30)));
            }
            Err(HubError::Transport { .. }) if attempt <= 3 => {
                std::thread::sleep(Duration::from_secs(1))
            }
            Err(e) => bail!(
                "sending sessions to {owner}/{feed} on {} failed: {e}",
                hub.base()
            ),
        }
    }
}

// ---------------------------------------------------------------- apiary feed sensor

/// Sensors of a feed and the networks they sit in.
#[derive(Args, Debug)]
#[command(
    after_help = "A sensor is a honeypot inside a feed, named as its logs name it (Cowrie's `sensor` field,
the shipper's config or the hpfeeds ident). Its owner declares the network it sits in (an AS
number and/or a prefix): honeypots log private addresses, so this cannot be read from the logs.
The trust model and the correlation views count vantage points by these networks. Sensors seen
in sessions but not registered are listed as undeclared.

Examples:
  apiary feed sensor add ops/honeypots pot-fra1 --asn 64500 --prefix 198.51.100.0/24
  apiary feed sensor list ops/honeypots --json
  apiary feed sensor remove ops/honeypots pot-fra1"
)]
pub struct FeedSensorArgs {
    #[command(subcommand)]
    pub command: FeedSensorCommand,
}

#[derive(Subcommand, Debug)]
pub enum FeedSensorCommand {
    /// Register a sensor (or change its declared network).
    #[command(after_help = "Examples:
  apiary feed sensor add ops/honeypots pot-fra1 --asn 64500 --prefix 185.222.209.0/24 --data ./apiary-data
  apiary feed sensor add ops/honeypots pot-ams2 --asn AS64501")]
    Add {
        #[arg(value_name = "USER/FEED")]
        feed: String,
        /// The sensor's name, as its logs name it.
        name: String,
        /// The AS number of its network (64500 or AS64500).
        #[arg(long)]
        asn: Option<String>,
        /// Its network's prefix (CIDR), or its public address.
        #[arg(long, value_name = "CIDR")]
        prefix: Option<String>,
    },
    /// List a feed's sensors, registered and seen in its sessions: network, sessions, last seen.
    #[command(after_help = "Examples:
  apiary feed sensor list ops/honeypots --data ./apiary-data
  apiary feed sensor list ops/honeypots --json")]
    List {
        #[arg(value_name = "USER/FEED")]
        feed: String,
        /// Print the hub's JSON form (`GET /api/v1/feeds/USER/FEED/sensors`).
        #[arg(long)]
        json: bool,
    },
    /// Remove a registered sensor (its sessions stay).
    #[command(after_help = "Example:
  apiary feed sensor remove ops/honeypots pot-fra1 --data ./apiary-data")]
    Remove {
        #[arg(value_name = "USER/FEED")]
        feed: String,
        name: String,
    },
}

pub fn run_feed_sensor(a: FeedSensorArgs, data: DataDir) -> anyhow::Result<ExitCode> {
    let store = data.open()?;
    let rt = runtime()?;
    let feed_of = |spec: &str| -> anyhow::Result<apiary_store::Feed> {
        let (owner, name) = split_feed(spec)?;
        rt.block_on(store.get_feed(&owner, &name))?
            .with_context(|| format!("no feed {spec}"))
    };
    match a.command {
        FeedSensorCommand::Add {
            feed,
            name,
            asn,
            prefix,
        } => {
            let f = feed_of(&feed)?;
            let asn = asn
                .map(|x| views::parse_asn(&Value::String(x)))
                .transpose()
                .map_err(anyhow::Error::msg)?
                .flatten();
            let prefix = prefix
                .map(|p| views::parse_prefix(&p, &Default::default()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            if asn.is_none() && prefix.is_none() {
                eprintln!("note: no --asn or --prefix: the sensor is registered without a declared network");
            }
            match rt.block_on(store.upsert_sensor(NewSensor {
                feed_id: f.id,
                name: name.clone(),
                asn,
                prefix,
            })) {
                Ok(s) => {
                    println!(
                        "sensor {} in {}: network {}",
                        terminal_safe(&s.name),
                        feed,
                        s.network().unwrap_or_else(|| "undeclared".into())
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::Invalid(m)) => {
                    eprintln!("error: {m}");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e).context("cannot register the sensor"),
            }
        }
        FeedSensorCommand::List { feed, json } => {
            let f = feed_of(&feed)?;
            let v = rt
                .block_on(views::sensors_view(store.as_ref(), &f, true))
                .map_err(|e| anyhow::anyhow!(e.message))?;
            if json {
                return print_json(&v);
            }
            println!(
                "{}: {} sensor(s), {} declared, {} network(s)",
                feed, v["sensors"], v["declared"], v["networks"]
            );
            for x in v["items"].as_array().into_iter().flatten() {
                println!(
                    "  {:<24} {:<24} {:>8} session(s)  {}",
                    s(&x["name"]),
                    if x["declared"] == true {
                        s(&x["network"])
                    } else {
                        "undeclared".into()
                    },
                    x["sessions"],
                    time(&x["last_seen"])
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FeedSensorCommand::Remove { feed, name } => {
            let f = feed_of(&feed)?;
            match rt.block_on(store.delete_sensor(f.id, &name)) {
                Ok(()) => {
                    println!("removed sensor {} from {feed}", terminal_safe(&name));
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::NotFound(_)) => {
                    eprintln!("error: {feed} has no registered sensor {name:?}");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e).context("cannot remove the sensor"),
            }
        }
    }
}
