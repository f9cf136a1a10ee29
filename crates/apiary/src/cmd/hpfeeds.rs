//! `apiary hpfeeds ident add|list|remove`: the idents of the hub's hpfeeds broker, managed on
//! the data directory (like users and tokens), so a running hub sees a change on the next
//! connection.
//!
//! The hpfeeds protocol authenticates with `SHA1(nonce ‖ secret)`, so the secret is stored as
//! given (the database file is kept readable by its owner only). See docs/hpfeeds.md.

use super::admin::{fmt_time, runtime, DataDir};
use anyhow::{bail, Context};
use apiary_store::{NewHpfeedsIdent, StoreError};
use clap::{Args, Subcommand};
use rand::RngCore;
use std::path::PathBuf;
use std::process::ExitCode;

/// Manage the hpfeeds broker (`apiary serve --hpfeeds ADDR`).
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary hpfeeds ident add cowrie-fra1 --secret-file fra1.secret --publish cowrie.sessions --feed ops/honeypots
  apiary hpfeeds ident list --data ./apiary-data

docs/hpfeeds.md describes the broker and its channels.")]
pub struct HpfeedsArgs {
    #[command(subcommand)]
    pub command: HpfeedsCommand,
}

#[derive(Subcommand, Debug)]
pub enum HpfeedsCommand {
    /// Idents: who may connect, with which secret, on which channels, into which feed.
    Ident(IdentArgs),
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  apiary hpfeeds ident add cowrie-fra1 --secret-file fra1.secret --publish cowrie.sessions --feed ops/honeypots
  apiary hpfeeds ident add mhn-consumer --subscribe apiary.sightings
  apiary hpfeeds ident list
  apiary hpfeeds ident remove cowrie-fra1

A Cowrie sensor publishing on `cowrie.sessions` with an ident that has --feed gets its sessions
recorded as sightings in that feed. Subscribers of `apiary.sightings` receive every new sighting
of the hub's public feeds as JSON. Without --secret or --secret-file a random secret is made and
shown once. The secret is stored readable (hpfeeds needs it): keep the data directory private.")]
pub struct IdentArgs {
    #[command(subcommand)]
    pub command: IdentCommand,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Subcommand, Debug)]
pub enum IdentCommand {
    /// Create an ident, or replace it (secret, channels and feed) if it exists.
    #[command(after_help = "Examples:
  apiary hpfeeds ident add cowrie-fra1 --secret-file fra1.secret --publish cowrie.sessions --feed ops/honeypots
  apiary hpfeeds ident add mhn-consumer --subscribe apiary.sightings     # prints a random secret once")]
    Add {
        /// The ident (the hpfeeds user name; Cowrie's `identifier`).
        ident: String,
        /// The shared secret (visible in the process list: prefer --secret-file).
        #[arg(long, conflicts_with = "secret_file")]
        secret: Option<String>,
        /// Read the secret from this file (its first line).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
        /// A channel it may publish to (repeat, or separate with commas).
        #[arg(long, value_name = "CHANNEL", value_delimiter = ',')]
        publish: Vec<String>,
        /// A channel it may subscribe to (repeat, or separate with commas).
        #[arg(long, value_name = "CHANNEL", value_delimiter = ',')]
        subscribe: Vec<String>,
        /// Record its `cowrie.sessions` messages as sightings in this feed (USER/FEED).
        #[arg(long, value_name = "USER/FEED")]
        feed: Option<String>,
    },
    /// List idents: name, channels, feed (never their secrets).
    #[command(after_help = "Example:
  apiary hpfeeds ident list --json --data ./apiary-data")]
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove an ident (its open connections keep going until they close).
    #[command(after_help = "Example:
  apiary hpfeeds ident remove cowrie-fra1 --data ./apiary-data")]
    Remove {
        /// The ident to remove.
        ident: String,
    },
}

pub fn run(a: HpfeedsArgs) -> anyhow::Result<ExitCode> {
    let HpfeedsCommand::Ident(a) = a.command;
    let store = a.data.open()?;
    let rt = runtime()?;
    match a.command {
        IdentCommand::Add { ident, secret, secret_file, publish, subscribe, feed } => {
            let (secret, generated) = match (secret, secret_file) {
                (Some(s), _) => (s, false),
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read the secret file {}", path.display()))?;
                    let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_owned();
                    if line.is_empty() {
                        bail!("the secret file {} is empty", path.display());
                    }
                    (line, false)
                }
                (None, None) => {
                    let mut bytes = [0u8; 24];
                    rand::rngs::OsRng.fill_bytes(&mut bytes);
                    (hex::encode(bytes), true)
                }
            };
            let new = NewHpfeedsIdent { ident, secret: secret.clone(), publish, subscribe, feed };
            match rt.block_on(store.upsert_hpfeeds_ident(new)) {
                Ok(i) => {
                    println!(
                        "hpfeeds ident {}: publish [{}], subscribe [{}], feed {}",
                        i.ident,
                        i.publish.join(", "),
                        i.subscribe.join(", "),
                        i.feed.as_deref().unwrap_or("(none: messages are relayed, not recorded)")
                    );
                    if generated {
                        println!("its secret (shown only now):\n\n    {secret}\n");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::NotFound(what)) => {
                    eprintln!("error: {what} does not exist (create it with `apiary feed create`)");
                    Ok(ExitCode::FAILURE)
                }
                Err(StoreError::Invalid(why)) => {
                    eprintln!("error: {why}");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e).context("cannot store the ident"),
            }
        }
        IdentCommand::List { json } => {
            let idents = rt.block_on(store.list_hpfeeds_idents())?;
            if json {
                for i in &idents {
                    println!("{}", serde_json::to_string(i)?);
                }
            } else {
                println!("{:<24} {:<28} {:<28} {:<24} UPDATED", "IDENT", "PUBLISH", "SUBSCRIBE", "FEED");
                for i in &idents {
                    println!(
                        "{:<24} {:<28} {:<28} {:<24} {}",
                        i.ident,
                        i.publish.join(","),
                        i.subscribe.join(","),
                        i.feed.as_deref().unwrap_or("-"),
                        fmt_time(i.updated_at)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        IdentCommand::Remove { ident } => match rt.block_on(store.delete_hpfeeds_ident(&ident)) {
            Ok(()) => {
                println!("removed hpfeeds ident {ident}");
                Ok(ExitCode::SUCCESS)
            }
            Err(StoreError::NotFound(_)) => {
                eprintln!("error: no hpfeeds ident {ident:?}");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => Err(e).context("cannot remove the ident"),
        },
    }
}
