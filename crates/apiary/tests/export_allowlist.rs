//! `apiary export --allowlist DIR`: an operator's hold list keeps popular infrastructure out of
//! blocklist formats (kept, and marked, in the plain formats); an exclude list keeps a value out
//! of every format.

mod common;
use common::*;

fn values(out: &str) -> Vec<String> {
    out.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_owned).collect()
}

#[test]
fn hold_and_exclude_lists_from_a_directory_apply_to_exports() {
    let data = tempfile::tempdir().unwrap();
    let lists = tempfile::tempdir().unwrap();
    for (name, use_, entry) in [("cdn", "hold", "104.16.0.0/13"), ("partners", "exclude", "93.184.216.0/24")] {
        let dir = lists.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let list = serde_json::json!({
            "name": name, "version": 1, "description": "test list", "type": "cidr",
            "use": use_, "list": [entry]
        });
        std::fs::write(dir.join("list.json"), list.to_string()).unwrap();
    }
    let file = data.path().join("values.txt");
    std::fs::write(&file, "104.16.0.1\n45.155.205.61\n93.184.216.34\n").unwrap();
    ok(&["import", "feed", "--feed", "ops/f", "--format", "text", "--data", s(data.path()), s(&file)]);

    let base = ["export", "ops/f", "--window", "all", "--data", s(data.path()), "--allowlist", s(lists.path())];
    let nginx = ok(&[&base[..], &["--format", "nginx"]].concat());
    assert_eq!(values(&nginx), vec!["deny 45.155.205.61;".to_string()], "{nginx}");

    let text = ok(&[&base[..], &["--format", "text"]].concat());
    let mut got = values(&text);
    got.sort();
    // The excluded partner address never leaves; the held CDN address stays in a plain list,
    // which is not a blocklist.
    assert_eq!(got, vec!["104.16.0.1".to_string(), "45.155.205.61".to_string()], "{text}");

    // Without the directory only the built-in lists apply: the CDN address is a blocklist entry.
    let plain = ok(&["export", "ops/f", "--window", "all", "--data", s(data.path()), "--format", "nginx"]);
    assert!(values(&plain).contains(&"deny 104.16.0.1;".to_string()), "{plain}");
    assert!(values(&plain).contains(&"deny 93.184.216.34;".to_string()), "{plain}");
}
