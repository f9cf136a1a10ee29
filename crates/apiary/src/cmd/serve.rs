//! `apiary serve`: run the hub on a data directory.
//!
//! Every setting has one name, used as the flag (`--max-body`), the environment variable
//! (`APIARY_MAX_BODY`) and the key of the optional TOML file (`max_body`). Precedence:
//! flag > environment > file > default. docs/configuration.md lists them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use apiary_server::{Config, Rate, TlsFiles};
use apiary_store::sqlite::{Durability, SqliteOptions};
use apiary_store::{Scopes, Store};
use clap::Args;
use serde::Deserialize;

/// Run the hub. With no options: data in ./apiary-data, listening on 127.0.0.1:8080.
///
/// On first start (no users yet) it creates the user `admin` and prints an admin token once.
/// Point CSIRTG clients (csirtgsdk, Cowrie's output_csirtg) at it with
/// CSIRTG_REMOTE=http://HOST:PORT/api; the native API is under /api/v1/ (see
/// /api/v1/openapi.json).
#[derive(Args, Debug, Default)]
#[command(after_help = "Examples:
  apiary serve
  apiary serve --data /srv/apiary --listen 0.0.0.0:8080 --public-url https://hub.example
  apiary serve --config /etc/apiary/apiary.toml --hpfeeds 0.0.0.0:10000 --asn-db ip2asn-combined.tsv.gz
  apiary serve --store postgres://apiary@db/apiary --bus nats://127.0.0.1:4222   # one node of several

Every setting is also an environment variable (APIARY_ + the flag's name) and a key of the
--config file; docs/configuration.md lists them.")]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the long flag names, `_` for `-`).
    #[arg(long, env = "APIARY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: short for --store sqlite:DIR [env: APIARY_DATA] [default: ./apiary-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The store: sqlite:DIR, or postgres://USER@HOST[:PORT]/DB[?schema=NAME&pool=N] that
    /// several nodes share (docs/scale-out.md) [env: APIARY_STORE].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The bus that carries committed sightings to the streams: `memory` (in-process) or
    /// nats://HOST:PORT[?stream=NAME&prefix=SUBJECT.PREFIX] (NATS JetStream, one stream for every
    /// node of a hub; docs/scale-out.md) [default: memory].
    #[arg(long, env = "APIARY_BUS", value_name = "URL")]
    pub bus: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "APIARY_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Base URL for links the hub hands out (CSIRTG `location`), when it sits behind a proxy.
    #[arg(long, env = "APIARY_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM); serve HTTPS together with --tls-key.
    #[arg(long, env = "APIARY_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "APIARY_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Largest request body, e.g. 16MiB, 512KiB or bytes [default: 16MiB].
    #[arg(long, env = "APIARY_MAX_BODY", value_name = "SIZE")]
    pub max_body: Option<String>,
    /// Requests per second allowed per token, 0 for no limit (bursts of twice that) [default: 10000].
    #[arg(long, env = "APIARY_RATE_LIMIT_TOKEN", value_name = "N")]
    pub rate_limit_token: Option<f64>,
    /// Requests per second allowed per address without a token, 0 for no limit [default: 20].
    #[arg(long, env = "APIARY_RATE_LIMIT_ANONYMOUS", value_name = "N")]
    pub rate_limit_anonymous: Option<f64>,
    /// Take client addresses from X-Forwarded-For (only behind your own proxy) [default: false].
    #[arg(long, env = "APIARY_TRUST_PROXY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub trust_proxy: Option<bool>,
    /// When a write is durable: `full` (synced: survives power loss) or `normal` (survives a
    /// crash of the hub, not of the machine) [default: full].
    #[arg(long, env = "APIARY_DURABILITY", value_name = "MODE")]
    pub durability: Option<String>,
    /// Log filter (tracing syntax, e.g. `info`, `apiary_server=debug`) [default: info].
    #[arg(long, env = "APIARY_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Also run an hpfeeds broker on this address, e.g. 127.0.0.1:10000 (docs/hpfeeds.md) [default: off].
    #[arg(long, env = "APIARY_HPFEEDS", value_name = "ADDR")]
    pub hpfeeds: Option<SocketAddr>,
    /// MISP warninglists to apply to exports and TAXII, on top of the built-in lists: a
    /// directory of `NAME/list.json` (exclude or hold per list, see docs/indicators.md).
    #[arg(long, env = "APIARY_ALLOWLIST", value_name = "DIR")]
    pub allowlist: Option<PathBuf>,
    /// IP-to-ASN tables that give addresses their AS number, AS name and country (the CSIRTG
    /// `asn`, `asn_desc`, `cc` fields, native views, streams, the stream filter `asn=`): an
    /// ip2asn TSV from iptoasn.com (ip2asn-combined.tsv, plain or .gz). Repeat the flag (or
    /// separate with commas) to layer tables; the first that knows a field wins. Reloaded on
    /// SIGHUP (docs/enrichment.md) [default: none].
    #[arg(long, env = "APIARY_ASN_DB", value_name = "FILE", value_delimiter = ',')]
    pub asn_db: Vec<PathBuf>,
    /// Open sign-up: anyone may make an account with read and write scopes (`POST
    /// /api/v1/signup`, the Account page), at most --signup-rate an hour per address
    /// [default: false, accounts are made by an admin].
    #[arg(long, env = "APIARY_SIGNUP", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub signup: Option<bool>,
    /// Sign-ups allowed per client address per hour when sign-up is open; the hub as a whole
    /// takes ten times that [default: 3].
    #[arg(long, env = "APIARY_SIGNUP_RATE", value_name = "N")]
    pub signup_rate: Option<f64>,
}

/// The TOML file: the same names as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data: Option<PathBuf>,
    store: Option<String>,
    bus: Option<String>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_body: Option<toml::Value>,
    rate_limit_token: Option<f64>,
    rate_limit_anonymous: Option<f64>,
    trust_proxy: Option<bool>,
    durability: Option<String>,
    log: Option<String>,
    hpfeeds: Option<SocketAddr>,
    allowlist: Option<PathBuf>,
    asn_db: Option<OneOrMany>,
    signup: Option<bool>,
    signup_rate: Option<f64>,
}

/// A TOML setting that is one path or a list of paths.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

/// Settings after precedence is applied.
struct Settings {
    data: super::store_url::StoreUrl,
    bus: String,
    allowlist: Option<PathBuf>,
    asn_db: Vec<PathBuf>,
    config: Config,
    durability: Durability,
    log: String,
}

/// `16MiB`, `512KiB`, `1GiB`, `1MB`, or a number of bytes.
fn parse_size(s: &str) -> anyhow::Result<usize> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().with_context(|| format!("size `{s}`: expected e.g. 16MiB or a number of bytes"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        other => bail!("size `{s}`: unknown unit `{other}` (use KiB, MiB or GiB)"),
    };
    Ok(n * mult)
}

fn rate(per_second: f64, name: &str) -> anyhow::Result<Rate> {
    if !per_second.is_finite() || per_second < 0.0 {
        bail!("{name} must be a number of requests per second, 0 for no limit");
    }
    Ok(Rate { per_second, burst: (per_second * 2.0).max(1.0) })
}

fn resolve(a: ServeArgs) -> anyhow::Result<Settings> {
    let file: FileSettings = match &a.config {
        None => FileSettings::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
        }
    };
    let defaults = Config::default();
    let max_body = match (a.max_body, file.max_body) {
        (Some(s), _) => parse_size(&s)?,
        (None, Some(toml::Value::Integer(n))) if n > 0 => n as usize,
        (None, Some(toml::Value::String(s))) => parse_size(&s)?,
        (None, Some(other)) => bail!("config max_body `{other}`: expected e.g. \"16MiB\" or a number of bytes"),
        (None, None) => defaults.max_body_bytes,
    };
    let tls = match (a.tls_cert.or(file.tls_cert), a.tls_key.or(file.tls_key)) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => bail!("TLS needs both --tls-cert and --tls-key"),
    };
    let durability = match a.durability.or(file.durability).as_deref().unwrap_or("full") {
        "full" => Durability::Full,
        "normal" => Durability::Normal,
        other => bail!("durability `{other}`: use `full` or `normal`"),
    };
    let token_rate = match a.rate_limit_token.or(file.rate_limit_token) {
        Some(r) => rate(r, "rate_limit_token")?,
        None => defaults.token_rate,
    };
    let anonymous_rate = match a.rate_limit_anonymous.or(file.rate_limit_anonymous) {
        Some(r) => rate(r, "rate_limit_anonymous")?,
        None => defaults.anonymous_rate,
    };
    let signup_rate = a.signup_rate.or(file.signup_rate).unwrap_or(defaults.signup.per_address_per_hour);
    if !(signup_rate.is_finite() && signup_rate > 0.0) {
        bail!("signup_rate `{signup_rate}`: sign-ups per address per hour, a number above 0");
    }
    let signup = apiary_server::SignupOptions { open: a.signup.or(file.signup).unwrap_or(false), per_address_per_hour: signup_rate };
    let public_url = a.public_url.or(file.public_url).map(|u| u.trim_end_matches('/').to_string());
    if let Some(u) = &public_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            bail!("public_url `{u}` must start with http:// or https://");
        }
    }
    Ok(Settings {
        data: super::store_url::resolve_from(
            a.store.as_deref(),
            a.data.as_deref(),
            match (file.store, file.data) {
                (Some(_), Some(_)) => bail!("config file: give `store` or `data`, not both"),
                (Some(s), None) => Some(s),
                (None, Some(d)) => Some(format!("sqlite:{}", d.display())),
                (None, None) => None,
            },
        )?,
        bus: a.bus.or(file.bus).unwrap_or_else(|| "memory".into()),
        durability,
        log: a.log.or(file.log).unwrap_or_else(|| "info".into()),
        allowlist: a.allowlist.or(file.allowlist),
        asn_db: match (a.asn_db.is_empty(), file.asn_db) {
            (false, _) => a.asn_db,
            (true, Some(OneOrMany::One(p))) => vec![p],
            (true, Some(OneOrMany::Many(ps))) => ps,
            (true, None) => Vec::new(),
        },
        config: Config {
            listen: a.listen.or(file.listen).unwrap_or(defaults.listen),
            public_url,
            tls,
            max_body_bytes: max_body,
            token_rate,
            anonymous_rate,
            trust_proxy: a.trust_proxy.or(file.trust_proxy).unwrap_or(false),
            hpfeeds: a.hpfeeds.or(file.hpfeeds).map(apiary_server::hpfeeds::BrokerConfig::new),
            signup,
            ..defaults
        },
    })
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = resolve(a)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .with_context(|| format!("log filter `{}`", settings.log))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();

    let opts = SqliteOptions { durability: settings.durability, ..SqliteOptions::default() };
    let store: Arc<dyn Store> = settings.data.open_with(opts)?;
    if let Some(dir) = &settings.allowlist {
        let mut lists = apiary_core::Allowlist::builtin();
        super::parse::load_dir(&mut lists, dir)
            .with_context(|| format!("cannot load the allowlist directory {}", dir.display()))?;
        eprintln!("allowlist: {} entries (built-in lists plus {})", lists.len(), dir.display());
        apiary_server::export::install_allowlist(lists);
    }

    let mut settings = settings;
    if !settings.asn_db.is_empty() {
        let (db, reports) = apiary_server::enrich::AsnDb::open(settings.asn_db.clone())
            .map_err(|e| anyhow::anyhow!("--asn-db: {e}"))?;
        for line in reports.iter().flat_map(|r| r.to_string().lines().map(str::to_string).collect::<Vec<_>>()) {
            eprintln!("asn-db: {}", super::terminal_safe(&line));
        }
        settings.config.asn = db;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        reload_on_hangup(settings.config.asn.clone());
        first_start(store.as_ref(), &settings.data).await?;
        let scheme = if settings.config.tls.is_some() { "https" } else { "http" };
        eprintln!(
            "apiary hub on {scheme}://{} (data: {}); CSIRTG clients: CSIRTG_REMOTE={scheme}://{}/api",
            settings.config.listen,
            settings.data.label(),
            settings.config.listen
        );
        let mut config = settings.config;
        if settings.bus != "memory" {
            let bus = apiary_bus::open(&settings.bus).await.map_err(|e| anyhow::anyhow!("--bus {}: {e}", settings.bus))?;
            eprintln!("bus: {} (shared by every node of the hub)", settings.bus);
            config.streams.bus = Some(apiary_server::streams::SharedBus(bus));
        }
        apiary_server::serve(config, store, shutdown_signal()).await
    })?;
    eprintln!("apiary hub stopped");
    Ok(ExitCode::SUCCESS)
}

/// With no users yet, create `admin` and print its token once.
async fn first_start(store: &dyn Store, data: &super::store_url::StoreUrl) -> anyhow::Result<()> {
    if !store.list_users().await?.is_empty() {
        return Ok(());
    }
    match store.create_user("admin", true).await {
        // Another node of the hub made it at the same moment: its token was printed there.
        Err(apiary_store::StoreError::Conflict(_)) => return Ok(()),
        other => other.context("creating the first user")?,
    };
    let scopes = Scopes { read: true, write: true, admin: true };
    let (_, token) = store
        .create_token("admin", scopes, None, Some("created on first start"))
        .await
        .context("creating the first token")?;
    println!("First start: created user `admin`. Its token (read, write, admin) is shown only now:\n");
    println!("    {token}\n");
    // The same flag the README and `apiary token --help` use: --data for a data directory.
    let target = match data.sqlite_dir() {
        Some(dir) => format!("--data {}", dir.display()),
        None => format!("--store {}", data.label()),
    };
    println!("Make another with: apiary token create --user admin --scopes read,write,admin {target}");
    Ok(())
}

/// On SIGHUP, read the `--asn-db` files again; the old tables stay if the new ones fail.
fn reload_on_hangup(db: Arc<apiary_server::enrich::AsnDb>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            if db.paths().is_empty() {
                tracing::info!("SIGHUP: no --asn-db files to reload");
                continue;
            }
            match tokio::task::spawn_blocking({
                let db = db.clone();
                move || db.reload()
            })
            .await
            {
                Ok(Ok(reports)) => reports.iter().for_each(|r| tracing::info!("SIGHUP: asn-db reloaded: {r}")),
                Ok(Err(e)) => tracing::warn!("SIGHUP: asn-db not reloaded, the previous tables stay: {e}"),
                Err(e) => tracing::warn!("SIGHUP: asn-db reload failed: {e}"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = db;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("apiary.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\npublic_url = \"https://hub.example/\"\nmax_body = \"1MiB\"\ndata = \"/srv/apiary\"\n")
            .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            listen: Some("0.0.0.0:7000".parse().unwrap()),
            ..ServeArgs::default()
        };
        let s = resolve(args).unwrap();
        assert_eq!(s.config.listen, "0.0.0.0:7000".parse().unwrap());
        assert_eq!(s.config.public_url.as_deref(), Some("https://hub.example"));
        assert_eq!(s.config.max_body_bytes, 1 << 20);
        assert_eq!(s.data, super::super::store_url::StoreUrl::Sqlite(PathBuf::from("/srv/apiary")));

        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        assert!(resolve(ServeArgs { config: Some(file), ..ServeArgs::default() }).is_err(), "typos in the file are errors");

        let s = resolve(ServeArgs::default()).unwrap();
        assert_eq!(s.data, super::super::store_url::StoreUrl::Sqlite(PathBuf::from("./apiary-data")));
        assert_eq!(s.config.listen, "127.0.0.1:8080".parse().unwrap());
    }
}
