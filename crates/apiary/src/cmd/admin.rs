//! Admin commands: users, tokens, feeds and backups, done on the data directory directly.
//!
//! They open the same SQLite store as `apiary serve` and write through it, so they work while a
//! hub serves the directory, and the hub sees the change on its next request (it caches no
//! accounts).

use anyhow::{bail, Context};
use apiary_store::{NewFeed, Scopes, Store, StoreError, Timestamp, Visibility};
use chrono::Utc;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the hub keeps its data. Shared by every command that works on the hub's store;
/// resolved by [`super::store_url::resolve`] (flag > environment > config file > default).
#[derive(Args, Debug, Clone, Default)]
pub struct DataDir {
    /// The hub's data directory (the one `apiary serve` uses): short for --store sqlite:DIR
    /// [env: APIARY_DATA] [default: ./apiary-data].
    #[arg(long = "data", value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// The hub's store: sqlite:DIR or postgres://USER@HOST[:PORT]/DB, as `apiary serve --store`
    /// [env: APIARY_STORE].
    #[arg(long = "store", value_name = "URL", global = true)]
    pub store: Option<String>,
    /// Config file whose `store` or `data` key names the store (the file `apiary serve` reads).
    #[arg(long = "config", value_name = "FILE", env = "APIARY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

impl DataDir {
    /// The store these flags, the environment and the config file name.
    pub fn url(&self) -> anyhow::Result<super::store_url::StoreUrl> {
        super::store_url::resolve(self.store.as_deref(), self.dir.as_deref(), self.config.as_deref())
    }

    /// Open the store. Fails with a readable message if it cannot be used.
    pub fn open(&self) -> anyhow::Result<std::sync::Arc<dyn Store>> {
        self.url()?.open()
    }
}

/// A small runtime for the async store API in one-shot commands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}

/// Split `USER/FEED` into its parts.
pub fn split_feed(spec: &str) -> anyhow::Result<(String, String)> {
    match spec.split_once('/') {
        Some((u, f)) if !u.is_empty() && !f.is_empty() && !f.contains('/') => Ok((u.to_owned(), f.to_owned())),
        _ => bail!("feed must be written USER/FEED (for example `ops/ssh-scanners`), not {spec:?}"),
    }
}

// ---------------------------------------------------------------- users

/// Manage users.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary user add alice --data ./apiary-data
  apiary user add root2 --admin
  apiary user list --json

A new user has no token: give one with `apiary token create --user NAME --scopes read,write`.")]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user (it has no token until `apiary token create`).
    #[command(after_help = "Examples:
  apiary user add alice --data ./apiary-data
  apiary user add ops --admin --store postgres://apiary@db.internal/apiary")]
    Add {
        /// The user name (also the owner part of its feeds' names, `NAME/feed`).
        name: String,
        /// Make the user an administrator (may act on every feed and account).
        #[arg(long)]
        admin: bool,
    },
    /// List users: id, name, admin, created.
    #[command(after_help = "Examples:
  apiary user list --data ./apiary-data
  apiary user list --json | jq -r .name")]
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run_user(a: UserArgs) -> anyhow::Result<ExitCode> {
    let store = a.data.open()?;
    let rt = runtime()?;
    match a.command {
        UserCommand::Add { name, admin } => match rt.block_on(store.create_user(&name, admin)) {
            Ok(u) => {
                println!("created user {}{} (id {})", u.name, if u.admin { " (admin)" } else { "" }, u.id);
                println!("give it a token: apiary token create --user {} --scopes read,write", u.name);
                Ok(ExitCode::SUCCESS)
            }
            Err(StoreError::Conflict(_)) => {
                eprintln!("error: user {name:?} already exists");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e).context("cannot create the user"),
        },
        UserCommand::List { json } => {
            let users = rt.block_on(store.list_users())?;
            if json {
                for u in &users {
                    println!("{}", serde_json::to_string(u)?);
                }
            } else {
                println!("{:<6} {:<24} {:<6} CREATED", "ID", "NAME", "ADMIN");
                for u in &users {
                    println!("{:<6} {:<24} {:<6} {}", u.id, u.name, if u.admin { "yes" } else { "no" }, fmt_time(u.created_at));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ---------------------------------------------------------------- tokens

/// Manage API tokens. Tokens are stored hashed: the plaintext is shown once, at creation.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary token create --user alice --scopes read,write --label cowrie-sensor-1
  apiary token create --user alice --scopes read --expires 30d
  apiary token create --user ops --scopes read,write,admin --expires 2027-01-01T00:00:00Z
  apiary token list --user alice
  apiary token revoke --user alice 3

`token create` prints the plaintext token alone on its last line, so scripts can take it with
`apiary token create ... | tail -n 1`.")]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for a user and print it (once, on the last line).
    #[command(after_help = "Examples:
  apiary token create --user alice --scopes read,write --data ./apiary-data
  apiary token create --user alice --scopes read --expires 30d --label grafana
  TOKEN=$(apiary token create --user alice --scopes read,write | tail -n 1)

The hub keeps only the token's hash: it cannot be shown again (make a new one, revoke the old).")]
    Create {
        /// The user the token acts as.
        #[arg(long)]
        user: String,
        /// Comma-separated scopes: read (search, export, stream), write (publish to the user's
        /// feeds), admin (every feed and account).
        #[arg(long, default_value = "read")]
        scopes: String,
        /// When the token stops working: an RFC 3339 time, or a duration from now such as
        /// `30d`, `12h`, `2w`, `90m`. Default: never.
        #[arg(long, value_name = "TIME|DURATION")]
        expires: Option<String>,
        /// A note to recognise the token by (where it is used).
        #[arg(long)]
        label: Option<String>,
    },
    /// List a user's tokens: id, scopes, created, expires, state, label (never their secrets).
    #[command(after_help = "Examples:
  apiary token list --user alice --data ./apiary-data
  apiary token list --user alice --json")]
    List {
        /// The user whose tokens to list.
        #[arg(long)]
        user: String,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (from `token list`); it stops working at once.
    #[command(after_help = "Example:
  apiary token revoke --user alice 3 --data ./apiary-data")]
    Revoke {
        /// The user the token belongs to.
        #[arg(long)]
        user: String,
        /// The token id.
        id: i64,
    },
}

pub fn run_token(a: TokenArgs) -> anyhow::Result<ExitCode> {
    let store = a.data.open()?;
    let rt = runtime()?;
    match a.command {
        TokenCommand::Create { user, scopes, expires, label } => {
            let Some(sc) = Scopes::parse(&scopes).filter(|s| s.read || s.write || s.admin) else {
                bail!("--scopes must list read, write and/or admin, comma separated (got {scopes:?})");
            };
            let expires = expires.as_deref().map(parse_expiry).transpose()?;
            match rt.block_on(store.create_token(&user, sc, expires, label.as_deref())) {
                Ok((info, secret)) => {
                    println!(
                        "token {} for {} (scopes {}, expires {})",
                        info.id,
                        info.user,
                        info.scopes.to_string_list(),
                        info.expires_at.map(fmt_time).unwrap_or_else(|| "never".into())
                    );
                    println!("it is shown only this once; the hub keeps only its hash:");
                    println!("{secret}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::NotFound(_)) => {
                    eprintln!("error: no user {user:?}; create it with `apiary user add {user}`");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e).context("cannot create the token"),
            }
        }
        TokenCommand::List { user, json } => {
            let tokens = match rt.block_on(store.list_tokens(&user)) {
                Ok(t) => t,
                Err(StoreError::NotFound(_)) => {
                    eprintln!("error: no user {user:?}");
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e).context("cannot list tokens"),
            };
            if json {
                for t in &tokens {
                    println!("{}", serde_json::to_string(t)?);
                }
            } else {
                println!("{:<6} {:<18} {:<22} {:<22} {:<8} LABEL", "ID", "SCOPES", "CREATED", "EXPIRES", "STATE");
                let now = Utc::now();
                for t in &tokens {
                    let state = if t.revoked {
                        "revoked"
                    } else if t.expires_at.is_some_and(|e| e <= now) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<6} {:<18} {:<22} {:<22} {:<8} {}",
                        t.id,
                        t.scopes.to_string_list(),
                        fmt_time(t.created_at),
                        t.expires_at.map(fmt_time).unwrap_or_else(|| "never".into()),
                        state,
                        t.label.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { user, id } => match rt.block_on(store.revoke_token(&user, id)) {
            Ok(()) => {
                println!("revoked token {id} of {user}");
                Ok(ExitCode::SUCCESS)
            }
            Err(StoreError::NotFound(m)) => {
                eprintln!("error: {m}");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e).context("cannot revoke the token"),
        },
    }
}

/// `--expires`: an absolute time (any form the core reads) or a duration from now.
fn parse_expiry(s: &str) -> anyhow::Result<Timestamp> {
    let s = s.trim();
    if let Some(d) = parse_duration(s) {
        return Ok(Utc::now() + d);
    }
    let t = apiary_core::parse_time(s)
        .map_err(|e| anyhow::anyhow!("--expires {s:?}: not a time or a duration like 30d ({e})"))?;
    if t <= Utc::now() {
        bail!("--expires {s:?} is in the past");
    }
    Ok(t)
}

/// `30d`, `12h`, `2w`, `90m`, `45s`.
fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok().filter(|n| *n > 0)?;
    match unit {
        's' => chrono::Duration::try_seconds(n),
        'm' => chrono::Duration::try_minutes(n),
        'h' => chrono::Duration::try_hours(n),
        'd' => chrono::Duration::try_days(n),
        'w' => chrono::Duration::try_weeks(n),
        _ => None,
    }
}

// ---------------------------------------------------------------- feeds

/// Manage feeds. A feed is named `USER/FEED`; it is public unless created `--private`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary feed create alice/ssh-scanners --description \"SSH brute force seen by our honeypots\"
  apiary feed create alice/internal --private
  apiary feed list
  apiary feed list --owner alice --json")]
pub struct FeedArgs {
    #[command(subcommand)]
    pub command: FeedCommand,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Subcommand, Debug)]
pub enum FeedCommand {
    /// Create a feed owned by an existing user.
    #[command(after_help = "Examples:
  apiary feed create alice/honeypot --data ./apiary-data
  apiary feed create alice/ssh-scanners --description \"SSH brute force seen by our honeypots\" --license-name CC-BY-4.0
  apiary feed create alice/internal --private

A new feed of a non-admin starts on probation as a source; an admin's as a seed (apiary source --help).")]
    Create {
        /// `USER/FEED`: the owner (an existing user) and the feed's name.
        #[arg(value_name = "USER/FEED")]
        feed: String,
        /// What the feed holds and where it comes from (shown in listings, exports and the web pages).
        #[arg(long)]
        description: Option<String>,
        /// Only the owner, admins and users granted access may read it.
        #[arg(long)]
        private: bool,
        /// Licence name, e.g. `CC-BY-4.0`.
        #[arg(long)]
        license_name: Option<String>,
        /// Licence URL, e.g. `https://creativecommons.org/licenses/by/4.0/`.
        #[arg(long)]
        license_url: Option<String>,
    },
    /// List feeds: id, name, visibility, description.
    #[command(after_help = "Examples:
  apiary feed list --data ./apiary-data
  apiary feed list --owner alice --json")]
    List {
        /// Only this user's feeds.
        #[arg(long)]
        owner: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Compare the feeds: volume, overlap, latency, marginal lift (docs/compare.md).
    Compare(super::compare::CompareArgs),
    /// Sensors of a feed and their declared networks (add, list, remove).
    Sensor(super::sessions::FeedSensorArgs),
}

pub fn run_feed(a: FeedArgs) -> anyhow::Result<ExitCode> {
    if let FeedCommand::Compare(c) = a.command {
        return super::compare::run(c, a.data);
    }
    if let FeedCommand::Sensor(c) = a.command {
        return super::sessions::run_feed_sensor(c, a.data);
    }
    let store = a.data.open()?;
    let rt = runtime()?;
    match a.command {
        FeedCommand::Create { feed, description, private, license_name, license_url } => {
            let (owner, name) = split_feed(&feed)?;
            let new = NewFeed {
                owner: owner.clone(),
                name,
                description,
                license_name,
                license_url,
                visibility: if private { Visibility::Private } else { Visibility::Public },
            };
            match rt.block_on(store.create_feed(new)) {
                Ok(f) => {
                    println!("created feed {} ({}, id {})", f.full_name(), vis(f.visibility), f.id);
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::Conflict(_)) => {
                    eprintln!("error: feed {feed} already exists");
                    Ok(ExitCode::FAILURE)
                }
                Err(StoreError::NotFound(_)) => {
                    eprintln!("error: no user {owner:?}; create it first with `apiary user add {owner}`");
                    Ok(ExitCode::FAILURE)
                }
                Err(StoreError::Invalid(m)) => {
                    eprintln!("error: {m}");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e).context("cannot create the feed"),
            }
        }
        FeedCommand::Compare(_) | FeedCommand::Sensor(_) => unreachable!("handled above"),
        FeedCommand::List { owner, json } => {
            let feeds = rt.block_on(store.list_feeds(owner.as_deref()))?;
            if json {
                for f in &feeds {
                    let mut v = serde_json::to_value(f)?;
                    v["feed"] = serde_json::Value::String(f.full_name());
                    println!("{v}");
                }
            } else {
                println!("{:<6} {:<36} {:<8} DESCRIPTION", "ID", "FEED", "VISIBLE");
                for f in &feeds {
                    println!(
                        "{:<6} {:<36} {:<8} {}",
                        f.id,
                        f.full_name(),
                        vis(f.visibility),
                        f.description.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn vis(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

// ---------------------------------------------------------------- backup

/// Write a consistent copy of the hub's database to FILE, while the hub keeps running.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary backup --data ./apiary-data /var/backups/apiary-$(date +%F).db

The copy is a complete SQLite database: to restore, stop the hub and put it in place of
DIR/apiary.db (removing any apiary.db-wal and apiary.db-shm beside it).")]
pub struct BackupArgs {
    /// Where to write the copy (must not exist).
    pub file: PathBuf,
    #[command(flatten)]
    pub data: DataDir,
}

pub fn run_backup(a: BackupArgs) -> anyhow::Result<ExitCode> {
    if a.file.exists() {
        bail!("{} already exists; choose a new file name", a.file.display());
    }
    let url = a.data.url()?;
    let Some(dir) = url.sqlite_dir().map(PathBuf::from) else {
        bail!("{} is PostgreSQL: back it up with pg_dump (docs/scale-out.md, \"Backups\")", url.label());
    };
    if !dir.join(apiary_store::sqlite::DB_FILE).exists() {
        bail!("no hub data in {} (expected {})", dir.display(), apiary_store::sqlite::DB_FILE);
    }
    let store = a.data.open()?;
    let rt = runtime()?;
    rt.block_on(store.backup(&a.file)).with_context(|| format!("backup to {} failed", a.file.display()))?;
    let size = std::fs::metadata(&a.file).map(|m| m.len()).unwrap_or(0);
    println!("backed up {} to {} ({} bytes)", dir.display(), a.file.display(), size);
    Ok(ExitCode::SUCCESS)
}

pub fn fmt_time(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_feed_names() {
        assert_eq!(parse_duration("30d"), chrono::Duration::try_days(30));
        assert_eq!(parse_duration("12h"), chrono::Duration::try_hours(12));
        assert_eq!(parse_duration("0d"), None);
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration("2027-01-01"), None);
        assert_eq!(split_feed("ops/ssh").unwrap(), ("ops".into(), "ssh".into()));
        assert!(split_feed("ops").is_err());
        assert!(split_feed("/x").is_err());
        assert!(split_feed("a/b/c").is_err());
    }
}
