use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PublishArgs {}
#[derive(Args, Debug)]
pub struct SearchArgs {}

pub fn run_publish(_a: PublishArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn run_search(_a: SearchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
