//! The built binary: `apiary import dionaea` on the real logs (offline and through a hub), and
//! `apiary serve --asn-db` enriching what it serves and reloading its table on SIGHUP.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn real_dionaea_logs() -> Option<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/dionaea");
    if !dir.is_dir() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but {} is missing: the real Dionaea logs are required", dir.display());
        }
        eprintln!("skipping: {} not found", dir.display());
        return None;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    Some(files)
}

fn summary(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

#[test]
fn dionaea_logs_import_offline_and_through_a_hub_alike() {
    let Some(files) = real_dionaea_logs() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let offline = tmp.path().join("offline");
    let mut args = vec!["import", "dionaea", "--feed", "ops/dionaea", "--data", s(&offline), "--json"];
    args.extend(files.iter().map(|f| s(f)));
    let first = summary(&args);
    assert_eq!((first["events"].as_u64(), first["lines_rejected"].as_u64()), (Some(1042), Some(0)), "{first}");
    let stored = first["stored"].as_u64().unwrap();
    assert_eq!(stored, first["sightings"].as_u64().unwrap());
    assert!(stored > 700, "{first}");
    let again = summary(&args);
    assert_eq!((again["stored"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(stored)), "a second import adds nothing");

    // Through a hub, with `import honeypot --kind dionaea`: the same sightings.
    let data = tmp.path().join("hub");
    let token = user_with_token(&data, "alice", "read,write");
    let hub = Hub::start(&data);
    let mut args = vec!["import", "honeypot", "--kind", "dionaea", "--feed", "alice/dionaea", "--hub", &hub.url, "--token", &token, "--json"];
    args.extend(files.iter().map(|f| s(f)));
    let via_hub = summary(&args);
    assert_eq!((via_hub["mode"].as_str(), via_hub["stored"].as_u64()), (Some("hub"), Some(stored)), "{via_hub}");
    let http = reqwest::blocking::Client::new();
    let page: Value = http
        .get(format!("{}/api/v1/indicators?feed=alice/dionaea&tags=mssql,bruteforce&limit=1000", hub.url))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(!page["items"].as_array().unwrap().is_empty(), "mssql logins are tagged: {page}");

    // Bad lines: counted with their numbers, the good ones kept.
    let bad = tmp.path().join("dionaea.json");
    let good = std::fs::read_to_string(&files[0]).unwrap();
    let first_line = good.lines().next().unwrap();
    std::fs::write(&bad, format!("{first_line}\nnot json\n{{\"eventid\": \"connection\"}}\n")).unwrap();
    let o = summary(&["import", "dionaea", "--feed", "ops/bad", "--data", s(&offline), "--json", s(&bad)]);
    assert_eq!((o["events"].as_u64(), o["lines_rejected"].as_u64(), o["stored"].as_u64()), (Some(1), Some(2), Some(1)), "{o}");
    let lines: Vec<u64> = o["problems"].as_array().unwrap().iter().map(|p| p["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 3]);
}

/// `apiary serve` with extra arguments, on a free port; killed on drop.
struct Served {
    url: String,
    child: std::process::Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path, extra: &[&str]) -> Served {
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
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let served = Served { url: format!("http://{listen}"), child };
    let http = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http.get(format!("{}/api/v1/health", served.url)).send().is_ok_and(|r| r.status().is_success()) {
            return served;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("apiary serve did not answer");
}

#[test]
fn serve_asn_db_fills_csirtg_fields_and_reloads_on_sighup() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let table = tmp.path().join("ip2asn-v4.tsv");
    std::fs::write(&table, "198.51.100.0\t198.51.100.255\t64501\tNL\tEXAMPLE-A\nbroken line\n").unwrap();
    let token = user_with_token(&data, "alice", "read,write");
    ok(&["feed", "create", "alice/pots", "--data", s(&data)]);
    let hub = serve(&data, &["--asn-db", s(&table)]);
    let http = reqwest::blocking::Client::new();
    let r = http
        .post(format!("{}/api/v1/feeds/alice/pots/indicators", hub.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"indicator": "198.51.100.7", "tags": ["scanner"]}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let search = |http: &reqwest::blocking::Client| -> Value {
        http.get(format!("{}/api/search?q=198.51.100.7", hub.url))
            .header("Accept", "application/vnd.csirtg.v1")
            .header("Authorization", format!("Token token={token}"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let found = search(&http);
    assert_eq!((found[0]["asn"].as_u64(), found[0]["asn_desc"].as_str(), found[0]["cc"].as_str()), (Some(64501), Some("EXAMPLE-A"), Some("NL")));

    std::fs::write(&table, "198.51.100.0\t198.51.100.255\t64509\tDE\tEXAMPLE-RENAMED\n").unwrap();
    let status = Command::new("kill").args(["-HUP", &hub.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = search(&http);
        if v[0]["asn"].as_u64() == Some(64509) {
            assert_eq!((v[0]["asn_desc"].as_str(), v[0]["cc"].as_str()), (Some("EXAMPLE-RENAMED"), Some("DE")));
            break;
        }
        assert!(Instant::now() < deadline, "the table was not reloaded on SIGHUP: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A file that cannot be read stops the start with the reason.
    let o = apiary(&["serve", "--data", s(&data), "--listen", "127.0.0.1:0", "--asn-db", "/nonexistent/ip2asn.tsv"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/ip2asn.tsv"), "{}", stderr(&o));
}
