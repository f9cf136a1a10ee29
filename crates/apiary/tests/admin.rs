//! Admin commands on a data directory: users, tokens, feeds, backup.

mod common;
use common::*;

#[test]
fn users_tokens_and_feeds() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = s(&data);

    let out = ok(&["user", "add", "alice", "--data", d]);
    assert!(out.contains("created user alice"), "{out}");
    ok(&["user", "add", "root2", "--admin", "--data", d]);
    let again = apiary(&["user", "add", "alice", "--data", d]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));

    let users: Vec<serde_json::Value> =
        ok(&["user", "list", "--json", "--data", d]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<(&str, bool)> = users.iter().map(|u| (u["name"].as_str().unwrap(), u["admin"].as_bool().unwrap())).collect();
    assert_eq!(names, vec![("alice", false), ("root2", true)]);

    // The token is alone on the last line.
    let out = ok(&["token", "create", "--user", "alice", "--scopes", "read,write", "--label", "sensor-1", "--expires", "30d", "--data", d]);
    let token = out.lines().last().unwrap();
    assert!(!token.is_empty() && !token.contains(' '), "{out}");
    assert!(!out.lines().take(out.lines().count() - 1).any(|l| l.contains(token)), "shown once");
    let second = ok(&["token", "create", "--user", "alice", "--scopes", "read", "--data", d]);
    assert_ne!(second.lines().last().unwrap(), token);

    let list: Vec<serde_json::Value> =
        ok(&["token", "list", "--user", "alice", "--json", "--data", d]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["label"], "sensor-1");
    assert_eq!(list[0]["scopes"]["write"], true);
    assert!(list[0]["expires_at"].is_string());
    assert!(list[1]["expires_at"].is_null());
    assert!(!ok(&["token", "list", "--user", "alice", "--data", d]).contains(token), "secrets are never listed");

    let id = list[0]["id"].as_i64().unwrap().to_string();
    ok(&["token", "revoke", "--user", "alice", &id, "--data", d]);
    let table = ok(&["token", "list", "--user", "alice", "--data", d]);
    assert!(table.lines().any(|l| l.starts_with(&id) && l.contains("revoked")), "{table}");

    let bad = apiary(&["token", "create", "--user", "alice", "--scopes", "read,fly", "--data", d]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let nobody = apiary(&["token", "create", "--user", "nobody", "--scopes", "read", "--data", d]);
    assert_eq!(nobody.status.code(), Some(1));
    assert!(stderr(&nobody).contains("apiary user add nobody"), "{}", stderr(&nobody));

    ok(&["feed", "create", "alice/ssh-scanners", "--description", "SSH brute force", "--data", d]);
    ok(&["feed", "create", "alice/internal", "--private", "--data", d]);
    let dup = apiary(&["feed", "create", "alice/internal", "--data", d]);
    assert_eq!(dup.status.code(), Some(1));
    let orphan = apiary(&["feed", "create", "nobody/x", "--data", d]);
    assert_eq!(orphan.status.code(), Some(1));
    let badname = apiary(&["feed", "create", "no-slash", "--data", d]);
    assert_eq!(badname.status.code(), Some(2));

    let feeds: Vec<serde_json::Value> =
        ok(&["feed", "list", "--json", "--data", d]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<(&str, &str)> =
        feeds.iter().map(|f| (f["feed"].as_str().unwrap(), f["visibility"].as_str().unwrap())).collect();
    assert!(got.contains(&("alice/ssh-scanners", "public")), "{got:?}");
    assert!(got.contains(&("alice/internal", "private")), "{got:?}");
}

#[test]
fn data_dir_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("from-env");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_apiary"))
        .args(["user", "add", "envuser"])
        .env("APIARY_DATA", &data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(ok(&["user", "list", "--data", s(&data)]).contains("envuser"));
}

#[test]
fn backup_is_a_usable_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = s(&data);
    ok(&["user", "add", "bob", "--data", d]);
    ok(&["feed", "create", "bob/f", "--data", d]);
    let file = tmp.path().join("copy.db");
    let out = ok(&["backup", "--data", d, s(&file)]);
    assert!(out.contains("backed up"), "{out}");
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
    // Refuses to overwrite.
    assert_eq!(apiary(&["backup", "--data", d, s(&file)]).status.code(), Some(2));
    // The copy opens as a data directory of its own.
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&file, restored.join("apiary.db")).unwrap();
    assert!(ok(&["feed", "list", "--data", s(&restored)]).contains("bob/f"));
    // Nothing to back up in an empty directory.
    let empty = tmp.path().join("empty");
    assert_eq!(apiary(&["backup", "--data", s(&empty), s(&tmp.path().join("x.db"))]).status.code(), Some(2));
}
