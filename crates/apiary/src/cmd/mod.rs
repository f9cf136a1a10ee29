//! Subcommands. One file per group of commands.

pub mod admin;
pub mod client;
pub mod compare;
pub mod demo;
pub mod export;
pub mod hpfeeds;
pub mod import;
pub mod import_feed;
pub mod import_honeypot;
pub mod parse;
pub mod sensor;
pub mod serve;
pub mod sessions;
pub mod simulate;
pub mod migrate;
pub mod store_url;
pub mod stream;
pub mod trust;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Apiary: an open threat-intelligence hub.
///
/// Run a hub with `apiary serve`, manage it with `apiary user|token|feed`, publish and search
/// with `apiary publish|search`, import honeypot logs with `apiary import cowrie`, and check how
/// a value is understood with `apiary parse`.
#[derive(Parser, Debug)]
#[command(name = "apiary", version, about, long_about = None, propagate_version = true,
    after_help = "Examples:
  apiary serve                                   # a hub on 127.0.0.1:8080, data in ./apiary-data
  apiary demo --data ./demo && apiary serve --data ./demo   # a realistic hub to explore
  apiary user add alice && apiary token create --user alice --scopes read,write
  apiary feed create alice/honeypot
  apiary publish alice/honeypot 185.222.209.108 malware-drop.net --tags scanner
  apiary search 185.222.209.108
  apiary score 185.222.209.108                   # confidence, tier and why
  apiary feed compare --data apiary-data         # what each feed adds
  apiary export alice/honeypot --format nginx

Client commands find the hub in APIARY_HUB and the token in APIARY_TOKEN; admin commands work
on the data directory (--data DIR, APIARY_DATA). `apiary COMMAND --help` explains each command.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the hub (HTTP API, CSIRTG-compatible API) on a data directory.
    Serve(serve::ServeArgs),
    /// Parse and normalise indicator values, and show how they are classified.
    Parse(parse::ParseArgs),
    /// Manage users (admin, works on the data directory).
    User(admin::UserArgs),
    /// Manage API tokens (admin, works on the data directory).
    Token(admin::TokenArgs),
    /// Manage feeds (admin, works on the data directory).
    Feed(admin::FeedArgs),
    /// Make a consistent online copy of the data.
    Backup(admin::BackupArgs),
    /// Publish indicators to a feed on a hub.
    Publish(client::PublishArgs),
    /// Search a hub for a value.
    Search(client::SearchArgs),
    /// Import data in bulk (Cowrie logs, feed files, ...).
    Import(import::ImportArgs),
    /// Fetch a feed URL (once or on a schedule, ETag aware) and import what changed.
    Pull(import_feed::PullArgs),
    /// Export a feed or the BLOCK tier in a consumer's format (text, csv, ipset, rpz, stix, ...).
    Export(export::ExportArgs),
    /// Manage the hpfeeds broker's idents (admin, works on the data directory).
    Hpfeeds(hpfeeds::HpfeedsArgs),
    /// Ship a honeypot's log to a hub, exactly once (the shipper beside a sensor).
    Sensor(sensor::SensorArgs),
    /// Run the trust model and baselines on a simulated Internet with adversaries.
    Simulate(simulate::SimulateArgs),
    /// Load a simulated world (honeypots, blocklists, Sybils) into a hub, for a realistic demo.
    Demo(demo::DemoArgs),
    /// Follow a feed on a hub (OWNER/NAME); `apiary stream --subscriptions` streams them.
    Subscribe(stream::SubscribeArgs),
    /// Stop following a feed (OWNER/NAME).
    Unsubscribe(stream::SubscribeArgs),
    /// List the feeds you follow on a hub.
    Subscriptions(stream::SubscriptionsArgs),
    /// Print new sightings from a hub as they are recorded (filtered, resumable).
    Stream(stream::StreamArgs),
    /// Copy a SQLite hub into PostgreSQL and verify the counts (docs/scale-out.md).
    Migrate(migrate::MigrateArgs),
    /// Push subscriptions: a filtered stream POSTed to a URL.
    Webhook(stream::WebhookArgs),
    /// List honeypot sessions (by attacker, feed, sensor or payload).
    Sessions(sessions::SessionsArgs),
    /// An attacker's timeline across sensors and networks.
    Attacker(sessions::AttackerArgs),
    /// Attackers seen by several sensors and networks.
    Attackers(sessions::AttackersArgs),
    /// Campaigns: attackers linked by a shared payload, tty log, command sequence or HASSH + credentials.
    Campaigns(sessions::CampaignsArgs),
    /// Feeds as sources: tiers (seed, established, probation, quarantined) and reliability.
    Source(trust::SourceArgs),
    /// Show an indicator's score (confidence, tier) and the terms that made it.
    Score(trust::ScoreArgs),
    /// Report a false positive to a hub.
    Feedback(trust::FeedbackArgs),
    /// Take a value back from one of your feeds on a hub (kept in history).
    Retract(trust::RetractArgs),
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Parse(a) => parse::run(a),
        Command::User(a) => admin::run_user(a),
        Command::Token(a) => admin::run_token(a),
        Command::Feed(a) => admin::run_feed(a),
        Command::Backup(a) => admin::run_backup(a),
        Command::Publish(a) => client::run_publish(a),
        Command::Search(a) => client::run_search(a),
        Command::Import(a) => import::run(a),
        Command::Export(a) => export::run(a),
        Command::Pull(a) => import_feed::run_pull(a),
        Command::Hpfeeds(a) => hpfeeds::run(a),
        Command::Sensor(a) => sensor::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Subscribe(a) => stream::run_subscribe(a),
        Command::Unsubscribe(a) => stream::run_unsubscribe(a),
        Command::Subscriptions(a) => stream::run_subscriptions(a),
        Command::Stream(a) => stream::run_stream(a),
        Command::Migrate(a) => migrate::run(a),
        Command::Webhook(a) => stream::run_webhook(a),
        Command::Sessions(a) => sessions::run_sessions(a),
        Command::Attacker(a) => sessions::run_attacker(a),
        Command::Attackers(a) => sessions::run_attackers(a),
        Command::Campaigns(a) => sessions::run_campaigns(a),
        Command::Source(a) => trust::run_source(a),
        Command::Score(a) => trust::run_score(a),
        Command::Feedback(a) => trust::run_feedback(a),
        Command::Retract(a) => trust::run_retract(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, like `{:#}`, but without repeating a cause whose text is
/// already in the message before it (reqwest and our own errors often quote their source).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|prev| prev.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// `1 sensor`, `2 sensors`: a count with its noun in the right number.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Text from a file, a feed or a hub made safe for a terminal: control characters (ESC, BEL, NUL,
/// newlines, ...) are written as escapes (`\u{1b}`, `\n`), so a hostile value cannot move the
/// cursor, retitle the window or forge output lines. Everything else, non-ASCII included, is kept.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect())
}

#[cfg(test)]
mod tests {
    use super::{error_chain, terminal_safe};

    #[derive(Debug)]
    struct Quoting(&'static str, Option<Box<Quoting>>);
    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn error_chain_drops_causes_the_message_already_quotes() {
        let inner = Quoting("client error (Connect)", Some(Box::new(Quoting("Connection refused (os error 111)", None))));
        let reqwest_like = Quoting("error sending request for url (http://127.0.0.1:9/)", Some(Box::new(inner)));
        let e = anyhow::Error::new(reqwest_like).context("cannot reach the hub at http://127.0.0.1:9: error sending request for url (http://127.0.0.1:9/)");
        assert_eq!(
            error_chain(&e),
            "cannot reach the hub at http://127.0.0.1:9: error sending request for url (http://127.0.0.1:9/): \
             client error (Connect): Connection refused (os error 111)"
        );
        assert_eq!(error_chain(&anyhow::anyhow!("plain")), "plain");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(terminal_safe("evil.example"), "evil.example");
        assert_eq!(terminal_safe("x\u{1b}]0;t\u{7}y"), "x\\u{1b}]0;t\\u{7}y");
        assert_eq!(terminal_safe("a\nb\0é�"), "a\\nb\\u{0}é�");
    }
}
