use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ImportArgs {}

pub fn run(_a: ImportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
