//! Helpers for the tests that run the built `apiary` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `apiary ARGS...` with no APIARY_* variables leaking in from the environment.
pub fn apiary(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apiary"));
    for (k, _) in std::env::vars() {
        if k.starts_with("APIARY_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).stdin(Stdio::null()).output().expect("run apiary")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run and require exit status 0, returning stdout.
pub fn ok(args: &[&str]) -> String {
    let o = apiary(args);
    assert!(
        o.status.success(),
        "apiary {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The real Cowrie logs in `../shared/data/cowrie/` beside the repository. In CI (CI=true) they
/// must be there; elsewhere their absence skips the test with a message.
pub fn real_cowrie_logs() -> Option<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cowrie");
    if !dir.is_dir() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but {} is missing: the real Cowrie logs are required", dir.display());
        }
        eprintln!("skipping: {} not found (set CI=true to make this an error)", dir.display());
        return None;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    Some(files)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A token for a new user, via the admin CLI.
pub fn user_with_token(data: &Path, name: &str, scopes: &str) -> String {
    ok(&["user", "add", name, "--data", s(data)]);
    let out = ok(&["token", "create", "--user", name, "--scopes", scopes, "--data", s(data)]);
    out.lines().last().unwrap().trim().to_owned()
}

/// A hub (`apiary serve`) on a free port, stopped on drop.
pub struct Hub {
    pub url: String,
    child: Child,
}

impl Hub {
    pub fn start(data: &Path) -> Hub {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apiary"));
        for (k, _) in std::env::vars() {
            if k.starts_with("APIARY_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args(["serve", "--data", s(data), "--listen", &listen])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start apiary serve");
        let hub = Hub {
            url: format!("http://{listen}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            if http
                .get(format!("{}/api/v1/health", hub.url))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return hub;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("apiary serve did not answer on {listen} within 30 s");
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
