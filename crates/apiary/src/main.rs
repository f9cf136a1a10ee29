//! `apiary`: one binary for the hub, its admin commands and its client commands.
//! Thin: argument parsing here, the work in the library crates.

mod cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cmd::Cli::parse();
    cmd::run(cli)
}
