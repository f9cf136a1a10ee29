use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ParseArgs {}

pub fn run(_a: ParseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
