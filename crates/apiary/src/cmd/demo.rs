//! `apiary demo`: load a simulated world (`apiary_core::trust::sim::demo`, the simulator's own
//! world) into a hub, so its pages, scores, comparison and exports have realistic content.
//!
//! Every source of the world becomes a user with one feed: seeds (`seed-NN/honeypots`, tier seed),
//! public blocklists (`blocklist-NN/ips`, the copying ones `aggregator-NN/ips`), honest strangers'
//! honeypots (`honeypot-NNN/sensors`) and Sybils (`sybil-NN/...`). Each (value, source) pair of
//! the world is one published sighting (first and last time, count, the session depth as tags,
//! the sensor's name), its simulated time mapped so the world ends now. Through a hub
//! (`--hub --token`, an admin's token) it uses the native API; with `--data` it writes the data
//! directory through the same intake as the hub. A re-run with the same seed adds nothing twice
//! (every sighting has an idempotency key).

use anyhow::{bail, Context};
use apiary_core::trust::sim::demo::{self, DemoWorld, SourceRole, ValueKind};
use apiary_core::trust::sim::{Adversary, WorldParams};
use apiary_core::trust::{Depth, Tier};
use apiary_core::ParseOptions;
use apiary_store::{NewFeed, Scopes, Store, StoreError, Visibility};
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Instant;

use super::admin::{runtime, DataDir};
use super::terminal_safe;

/// Load a simulated Internet (honeypots, blocklists, Sybils) into a hub.
#[derive(Args, Debug)]
#[command(
    after_help = "Builds the simulator's world (the one `apiary simulate` scores) and loads it into a hub:\n\
users and feeds for seed honeypots, public blocklists (some copying others), honest strangers'\n\
honeypots and Sybil adversaries, and every sighting over the simulated weeks, mapped so the\n\
world ends now. Seeds get tier seed and every feed its declared network (ASN).\n\n\
With --data DIR (the default, ./apiary-data) it writes the data directory and makes an admin\n\
`demo-admin` with a token, printed once. With --hub URL --token T (an admin's token) it goes\n\
through the native API. The same --seed gives the same world; loading it twice adds nothing.\n\n\
Examples:
  apiary demo --data ./demo && apiary serve --data ./demo
  apiary demo --scale medium --seed 7 --data ./demo-medium
  apiary demo --hub http://127.0.0.1:8080 --token $ADMIN_TOKEN"
)]
pub struct DemoArgs {
    /// The data directory or store to load (ignored with --hub).
    #[command(flatten)]
    pub data: DataDir,
    /// Load into this hub through its API instead (needs an admin's --token).
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// An admin's API token, for --hub.
    #[arg(long, value_name = "TOKEN", env = "APIARY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The world's seed: the same seed, the same world.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// small: ~80 sources and 8,000 attackers (seconds); medium: the spec's ~200 sources and
    /// 30,000 attackers.
    #[arg(long, value_enum, default_value_t = Scale::Small)]
    pub scale: Scale,
    /// The Sybils in the world: none, copycat-concentrated, copycat-distributed, patient,
    /// patient-rotating.
    #[arg(long, default_value = "copycat-distributed")]
    pub adversary: String,
    /// The Sybils' share of all sources (0–0.3).
    #[arg(long, default_value_t = 0.1)]
    pub share: f64,
    /// Print what was created as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    Small,
    Medium,
}

/// Sightings per store call or publish request.
const BATCH: usize = 5_000;

/// One user with one feed per source of the world.
struct Feed {
    owner: String,
    name: String,
    role: SourceRole,
    asn: u32,
    sensor: Option<String>,
}

fn feeds_of(w: &DemoWorld) -> Vec<Feed> {
    let mut n: HashMap<&'static str, usize> = HashMap::new();
    w.sources
        .iter()
        .map(|s| {
            let (prefix, feed, honeypot) = match s.role {
                SourceRole::Seed => ("seed", "honeypots", true),
                SourceRole::Noisy => ("blocklist", "ips", false),
                SourceRole::NoisyCopying => ("aggregator", "ips", false),
                SourceRole::Honest => ("honeypot", "sensors", true),
                SourceRole::Copycat => ("sybil", "ips", false),
                SourceRole::Patient => ("sybil", "sensors", true),
            };
            let k = n.entry(prefix).or_insert(0);
            *k += 1;
            let owner = if prefix == "honeypot" {
                format!("{prefix}-{k:03}")
            } else {
                format!("{prefix}-{k:02}")
            };
            let sensor = honeypot.then(|| format!("{owner}-s1"));
            Feed {
                owner,
                name: feed.into(),
                role: s.role,
                asn: s.asn,
                sensor,
            }
        })
        .collect()
}

fn depth_tags(d: Depth, honeypot: bool) -> Vec<&'static str> {
    if !honeypot {
        return vec!["blocklist"];
    }
    match d {
        Depth::Connect => vec!["ssh", "connect"],
        Depth::Handshake => vec!["ssh", "scanner"],
        Depth::Auth => vec!["ssh", "bruteforce"],
        Depth::Login => vec!["ssh", "bruteforce", "login"],
        Depth::Commands => vec!["ssh", "bruteforce", "login", "commands"],
        Depth::Payload => vec!["ssh", "bruteforce", "login", "commands", "download"],
    }
}

/// Where the world goes: a data directory or a hub.
trait Target {
    fn user(&mut self, name: &str) -> anyhow::Result<()>;
    fn feed(&mut self, f: &Feed, description: &str) -> anyhow::Result<()>;
    /// Tier and network; false if this hub keeps no source tiers.
    fn source(&mut self, f: &Feed, tier: Option<Tier>) -> anyhow::Result<bool>;
    /// Publish items, each to its feed (an index into `feeds`); returns how many were stored
    /// (duplicates are not).
    fn publish(&mut self, feeds: &[Feed], items: Vec<(usize, Map<String, Value>)>) -> anyhow::Result<u64>;
}

struct DataTarget {
    store: std::sync::Arc<dyn Store>,
    rt: tokio::runtime::Runtime,
    users: HashMap<String, i64>,
    feeds: HashMap<String, i64>,
    options: ParseOptions,
}

impl Target for DataTarget {
    fn user(&mut self, name: &str) -> anyhow::Result<()> {
        let u = match self.rt.block_on(self.store.create_user(name, false)) {
            Ok(u) => u,
            Err(StoreError::Conflict(_)) => self.rt.block_on(self.store.get_user(name))?.context("user vanished")?,
            Err(e) => return Err(e).with_context(|| format!("cannot create user {name}")),
        };
        self.users.insert(name.to_string(), u.id);
        Ok(())
    }

    fn feed(&mut self, f: &Feed, description: &str) -> anyhow::Result<()> {
        let new = NewFeed {
            owner: f.owner.clone(),
            name: f.name.clone(),
            description: Some(description.into()),
            visibility: Visibility::Public,
            ..Default::default()
        };
        let feed = match self.rt.block_on(self.store.create_feed(new)) {
            Ok(feed) => feed,
            Err(StoreError::Conflict(_)) => self.rt.block_on(self.store.get_feed(&f.owner, &f.name))?.context("feed vanished")?,
            Err(e) => return Err(e).with_context(|| format!("cannot create feed {}/{}", f.owner, f.name)),
        };
        self.feeds.insert(format!("{}/{}", f.owner, f.name), feed.id);
        Ok(())
    }

    fn source(&mut self, f: &Feed, tier: Option<Tier>) -> anyhow::Result<bool> {
        match self
            .rt
            .block_on(self.store.set_source_asn(&f.owner, &f.name, Some(i64::from(f.asn))))
        {
            Ok(_) => {}
            Err(StoreError::Internal(_)) => return Ok(false),
            Err(e) => return Err(e).context("cannot declare the feed's network"),
        }
        if let Some(t) = tier {
            self.rt
                .block_on(self.store.set_source_tier(&f.owner, &f.name, t))
                .context("cannot set the feed's tier")?;
        }
        Ok(true)
    }

    fn publish(&mut self, feeds: &[Feed], items: Vec<(usize, Map<String, Value>)>) -> anyhow::Result<u64> {
        let now = chrono::Utc::now();
        let mut batch = Vec::with_capacity(items.len());
        for (k, item) in items {
            let f = &feeds[k];
            let intake = apiary_server::intake::Intake {
                feed_id: self.feeds[&format!("{}/{}", f.owner, f.name)],
                reporter_id: self.users[&f.owner],
                received_at: now,
                options: &self.options,
                uuid_is_key: false,
            };
            match intake.from_object(item) {
                Ok(s) => batch.push(s),
                Err(r) => bail!("the demo made a sighting the hub refuses ({}): {}", r.code, r.message),
            }
        }
        let out = self
            .rt
            .block_on(self.store.append_sightings(batch))
            .context("cannot store the sightings")?;
        Ok(out.iter().filter(|o| !o.duplicate).count() as u64)
    }
}

struct HubTarget {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl HubTarget {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>, ndjson: Option<String>) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(lines) = ndjson {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/x-ndjson").body(lines);
        }
        let resp = req.send().with_context(|| format!("cannot reach the hub at {}", self.base))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().unwrap_or(Value::Null);
        Ok((status, body))
    }

    fn ok(&self, what: &str, (status, body): (u16, Value), also: &[u16]) -> anyhow::Result<Value> {
        if (200..300).contains(&status) || also.contains(&status) {
            return Ok(body);
        }
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("{what}: the hub answered {status}: {}", terminal_safe(msg))
    }
}

impl Target for HubTarget {
    fn user(&mut self, name: &str) -> anyhow::Result<()> {
        let r = self.call(reqwest::Method::POST, "/api/v1/users", Some(json!({"name": name})), None)?;
        self.ok(&format!("creating user {name}"), r, &[409]).map(|_| ())
    }

    fn feed(&mut self, f: &Feed, description: &str) -> anyhow::Result<()> {
        let body = json!({"name": f.name, "owner": f.owner, "description": description});
        let r = self.call(reqwest::Method::POST, "/api/v1/feeds", Some(body), None)?;
        self.ok(&format!("creating feed {}/{}", f.owner, f.name), r, &[409]).map(|_| ())
    }

    fn source(&mut self, f: &Feed, tier: Option<Tier>) -> anyhow::Result<bool> {
        let mut body = json!({"asn": f.asn});
        if let Some(t) = tier {
            body["tier"] = json!(t.as_str());
        }
        let path = format!("/api/v1/sources/{}/{}/tier", f.owner, f.name);
        let (status, b) = self.call(reqwest::Method::PUT, &path, Some(body), None)?;
        if status == 404 && b["error"]["code"].as_str() != Some("not_found") {
            return Ok(false);
        }
        self.ok(&format!("setting the tier of {}/{}", f.owner, f.name), (status, b), &[])
            .map(|_| true)
    }

    fn publish(&mut self, feeds: &[Feed], items: Vec<(usize, Map<String, Value>)>) -> anyhow::Result<u64> {
        let mut per_feed: Vec<String> = vec![String::new(); feeds.len()];
        for (k, item) in items {
            per_feed[k].push_str(&Value::Object(item).to_string());
            per_feed[k].push('\n');
        }
        let mut stored = 0;
        for (f, lines) in feeds.iter().zip(per_feed).filter(|(_, l)| !l.is_empty()) {
            let path = format!("/api/v1/feeds/{}/{}/indicators", f.owner, f.name);
            let r = self.call(reqwest::Method::POST, &path, None, Some(lines))?;
            let body = self.ok(&format!("publishing to {}/{}", f.owner, f.name), r, &[])?;
            if let Some(rej) = body["rejected"].as_array().filter(|r| !r.is_empty()) {
                bail!("the hub refused {} of the demo's sightings, e.g. {}", rej.len(), rej[0]);
            }
            stored += body["accepted"].as_u64().unwrap_or(0);
        }
        Ok(stored)
    }
}

fn description(role: SourceRole) -> &'static str {
    match role {
        SourceRole::Seed => "Demo: a trusted operator's SSH honeypots (simulated)",
        SourceRole::Noisy => "Demo: a public blocklist, late and with some false positives (simulated)",
        SourceRole::NoisyCopying => "Demo: a public blocklist that copies another (simulated)",
        SourceRole::Honest => "Demo: a stranger's honeypot (simulated)",
        SourceRole::Copycat => "Demo: a Sybil that copies public lists and injects benign addresses (simulated)",
        SourceRole::Patient => "Demo: a Sybil that runs a real honeypot, then injects (simulated)",
    }
}

pub fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let adversary = Adversary::from_name(&a.adversary).with_context(|| {
        format!(
            "--adversary {:?}: use none, copycat-concentrated, copycat-distributed, patient or patient-rotating",
            a.adversary
        )
    })?;
    if !(0.0..=0.3).contains(&a.share) {
        bail!("--share must be between 0 and 0.3, not {}", a.share);
    }
    let params = match a.scale {
        Scale::Small => WorldParams::small(),
        Scale::Medium => WorldParams::default(),
    };
    let started = Instant::now();
    let world = demo::world(&params, adversary, a.share, a.seed);
    let feeds = feeds_of(&world);
    let mut admin_token = None;
    let mut target: Box<dyn Target> = match &a.hub {
        Some(hub) => {
            let token = a
                .token
                .clone()
                .filter(|t| !t.is_empty())
                .context("--hub needs an admin's --token (or APIARY_TOKEN)")?;
            let base = hub.trim_end_matches('/').to_string();
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                bail!("--hub must be an http:// or https:// URL, not {base:?}");
            }
            let http = reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(300))
                .user_agent(concat!("apiary-cli/", env!("CARGO_PKG_VERSION")))
                .build()
                .context("cannot build the HTTP client")?;
            Box::new(HubTarget { base, token, http })
        }
        None => {
            let store = a.data.open()?;
            let rt = runtime()?;
            match rt.block_on(store.create_user("demo-admin", true)) {
                Ok(_) => {
                    let scopes = Scopes {
                        read: true,
                        write: true,
                        admin: true,
                    };
                    let (_, secret) = rt.block_on(store.create_token("demo-admin", scopes, None, Some("apiary demo")))?;
                    admin_token = Some(secret);
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e).context("cannot create the demo's admin"),
            }
            Box::new(DataTarget {
                store,
                rt,
                users: HashMap::new(),
                feeds: HashMap::new(),
                options: ParseOptions::default(),
            })
        }
    };

    let mut tiers_kept = true;
    for f in &feeds {
        target.user(&f.owner)?;
        target.feed(f, description(f.role))?;
        let tier = (f.role == SourceRole::Seed).then_some(Tier::Seed);
        tiers_kept &= target.source(f, tier)?;
    }

    // Simulated time → real time: the world ends now.
    let now = chrono::Utc::now().timestamp();
    let offset = now - world.end;
    let time = |t: i64| {
        chrono::DateTime::from_timestamp(t + offset, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    // Hubs take a publish per feed: batch larger there, so each request carries a few hundred.
    let batch_size = if a.hub.is_some() { BATCH * 8 } else { BATCH };
    let mut batch: Vec<(usize, Map<String, Value>)> = Vec::with_capacity(batch_size);
    let mut stored = 0u64;
    for s in &world.sightings {
        let f = &feeds[s.source as usize];
        let v = &world.values[s.value as usize];
        let mut item = Map::new();
        item.insert("indicator".into(), json!(v.address));
        item.insert("itype".into(), json!("ipv4"));
        item.insert("firsttime".into(), json!(time(s.first)));
        item.insert("lasttime".into(), json!(time(s.last)));
        item.insert("count".into(), json!(s.count));
        item.insert("tags".into(), json!(depth_tags(s.depth, f.sensor.is_some())));
        if let Some(sensor) = &f.sensor {
            item.insert("sensor".into(), json!(sensor));
            item.insert("portlist".into(), json!([22]));
            item.insert("protocol".into(), json!("tcp"));
        }
        item.insert("idempotency_key".into(), json!(format!("demo-{}-{}-{}", a.seed, s.value, s.source)));
        batch.push((s.source as usize, item));
        if batch.len() >= batch_size {
            stored += target.publish(&feeds, std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        stored += target.publish(&feeds, batch)?;
    }
    drop(target);
    let elapsed = started.elapsed().as_secs_f64();
    report(&a, &world, &feeds, stored, tiers_kept, admin_token.as_deref(), elapsed);
    Ok(ExitCode::SUCCESS)
}

fn report(a: &DemoArgs, w: &DemoWorld, feeds: &[Feed], stored: u64, tiers_kept: bool, token: Option<&str>, secs: f64) {
    let count = |r: SourceRole| feeds.iter().filter(|f| f.role == r).count();
    let kinds = |k: ValueKind| w.values.iter().filter(|v| v.kind == k).count();
    let reported: std::collections::HashSet<u32> = w.sightings.iter().map(|s| s.value).collect();
    if a.json {
        let v = json!({
            "seed": a.seed,
            "scale": format!("{:?}", a.scale).to_lowercase(),
            "adversary": a.adversary,
            "share": a.share,
            "feeds": {
                "seed": count(SourceRole::Seed), "noisy": count(SourceRole::Noisy), "copying": count(SourceRole::NoisyCopying),
                "honest": count(SourceRole::Honest), "copycat": count(SourceRole::Copycat), "patient": count(SourceRole::Patient),
            },
            "values_reported": reported.len(),
            "sightings": w.sightings.len(),
            "stored": stored,
            "tiers": tiers_kept,
            "admin_token": token,
            "seconds": (secs * 100.0).round() / 100.0,
        });
        println!("{v}");
        return;
    }
    let days = w.end as f64 / 86_400.0;
    println!(
        "Loaded a simulated world (seed {}, {:?} scale, {} at {:.0}% of sources) in {secs:.1} s:",
        a.seed,
        a.scale,
        a.adversary,
        a.share * 100.0
    );
    println!(
        "  {} feeds: {} seed honeypots (tier seed), {} blocklists ({} copying another), {} strangers' honeypots, {} Sybils ({})",
        feeds.len(),
        count(SourceRole::Seed),
        count(SourceRole::Noisy) + count(SourceRole::NoisyCopying),
        count(SourceRole::NoisyCopying),
        count(SourceRole::Honest),
        count(SourceRole::Copycat) + count(SourceRole::Patient),
        if count(SourceRole::Copycat) > 0 { "copycat" } else { "patient" },
    );
    println!(
        "  {} values reported ({} attackers, {} research scanners, {} popular and {} background benign addresses in the world), {} sightings over the last {days:.0} days ({stored} new)",
        reported.len(),
        kinds(ValueKind::Attacker),
        kinds(ValueKind::Research),
        kinds(ValueKind::Popular),
        kinds(ValueKind::Background),
        w.sightings.len(),
    );
    if !tiers_kept {
        println!("  (this hub keeps no source tiers: the seeds are ordinary feeds here)");
    }
    let seed_feed = feeds
        .iter()
        .find(|f| f.role == SourceRole::Seed)
        .map(|f| format!("{}/{}", f.owner, f.name))
        .unwrap_or_default();
    let attacker = w
        .sightings
        .iter()
        .rev()
        .find(|s| w.values[s.value as usize].kind == ValueKind::Attacker)
        .map(|s| w.values[s.value as usize].address.clone())
        .unwrap_or_default();
    println!("\nTry:");
    match &a.hub {
        None => {
            let data = match a.data.url().map(|u| u.sqlite_dir().map(|d| d.display().to_string())) {
                Ok(Some(dir)) => format!("--data {dir}"),
                Ok(None) | Err(_) => format!("--store {}", a.data.url().map(|u| u.label()).unwrap_or_default()),
            };
            if let Some(t) = token {
                println!("  export APIARY_TOKEN={t}   # demo-admin's token (shown once)");
            }
            println!("  apiary serve {data}");
            println!("  apiary feed compare {data}");
            println!("  apiary feed compare --hub http://127.0.0.1:8080 --token $APIARY_TOKEN   # after the hub's first comparison run");
            println!("  curl -s -H \"Authorization: Bearer $APIARY_TOKEN\" http://127.0.0.1:8080/api/v1/scores/{attacker}");
            println!("  apiary search {attacker} --hub http://127.0.0.1:8080");
            println!("  apiary export {seed_feed} --format csv {data} | head");
            println!("  apiary export --tier block --format text --hub http://127.0.0.1:8080 | head");
        }
        Some(hub) => {
            println!("  apiary feed compare --hub {hub} --token $APIARY_TOKEN");
            println!("  curl -s -H \"Authorization: Bearer $APIARY_TOKEN\" {hub}/api/v1/scores/{attacker}");
            println!("  apiary search {attacker} --hub {hub}");
            println!("  apiary export --tier block --format text --hub {hub} | head");
        }
    }
}
