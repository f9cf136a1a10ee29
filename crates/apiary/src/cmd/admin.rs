use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct UserArgs {}
#[derive(Args, Debug)]
pub struct TokenArgs {}
#[derive(Args, Debug)]
pub struct FeedArgs {}
#[derive(Args, Debug)]
pub struct BackupArgs {}

pub fn run_user(_a: UserArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn run_token(_a: TokenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn run_feed(_a: FeedArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn run_backup(_a: BackupArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
