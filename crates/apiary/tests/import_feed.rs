//! `apiary import feed` and `apiary pull`: every real feed file, counted a second way; the round
//! trip through the plain-text export; re-import; standard input; a hub; pulls from a local
//! HTTP server (ETag, Last-Modified, unchanged bodies).

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `../shared/data/feeds/` beside the repository: required in CI, skipped with a note elsewhere.
fn real_feeds() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/feeds");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {} is missing: the real feed files are required", dir.display());
    }
    eprintln!("skipping: {} not found (set CI=true to make this an error)", dir.display());
    None
}

fn summary(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("--json printed no JSON object ({e}):\n{out}"))
}

fn n(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("summary has no number `{field}`: {v}"))
}

/// Lines of a text file that are neither blank nor start with one of `comment`.
fn data_lines(path: &Path, comment: &[char]) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(comment))
        .map(str::to_owned)
        .collect()
}

/// How many values each real file holds, counted without the importer: by lines, or with
/// generic JSON for the JSON documents.
fn independent_count(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    match name {
        "emergingthreats_compromised-ips.txt" | "firehol_level1.netset" => data_lines(path, &['#']).len() as u64,
        "spamhaus_drop.txt" => data_lines(path, &[';']).len() as u64,
        "spamhaus_drop_v4.json" => text.lines().filter(|l| l.contains("\"cidr\"")).count() as u64,
        // Every data row of the abuse.ch files is a quoted line of its own; the Feodo header is
        // quoted too, URLhaus's is not.
        "feodotracker_ipblocklist.csv" => text.lines().filter(|l| l.starts_with('"')).count() as u64 - 1,
        "urlhaus_head300.csv" => text.lines().filter(|l| l.starts_with('"')).count() as u64,
        "stix21_bundle_indicators-for-C2-with-COA.json" => {
            let v: Value = serde_json::from_str(&text).unwrap();
            let objects = v["objects"].as_array().unwrap();
            objects.iter().filter(|o| o["type"] == "indicator" && o["pattern_type"] == "stix").count() as u64
        }
        "misp_event_circl_osint_sednit.json" => {
            let v: Value = serde_json::from_str(&text).unwrap();
            let mut attrs: Vec<&Value> = v["Attribute"].as_array().unwrap().iter().collect();
            for o in v["Object"].as_array().unwrap() {
                attrs.extend(o["Attribute"].as_array().unwrap());
            }
            let kinds = ["ip-src", "ip-dst", "domain", "hostname", "url", "md5", "sha1", "sha256", "email-src"];
            attrs.iter().filter(|a| a["to_ids"] == true && kinds.contains(&a["type"].as_str().unwrap())).count() as u64
        }
        other => panic!("a new file in ../shared/data/feeds: {other}; give it an independent count here"),
    }
}

/// The format each real file is, by name.
fn format_of(name: &str) -> &'static str {
    match name {
        "emergingthreats_compromised-ips.txt" => "text",
        "firehol_level1.netset" => "netset",
        "spamhaus_drop.txt" => "spamhaus-drop",
        "spamhaus_drop_v4.json" => "spamhaus-drop-json",
        "feodotracker_ipblocklist.csv" | "urlhaus_head300.csv" => "abusech-csv",
        "stix21_bundle_indicators-for-C2-with-COA.json" => "stix",
        "misp_event_circl_osint_sednit.json" => "misp",
        other => panic!("no format known for {other}"),
    }
}

fn feed_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}");
    files
}

/// The values of a feed's plain-text export (offline, every window).
fn exported(data: &Path, feed: &str) -> Vec<String> {
    let out = ok(&["export", feed, "--format", "text", "--window", "all", "--data", s(data)]);
    out.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_owned).collect()
}

#[test]
fn every_real_feed_file_imports_and_its_counts_match() {
    let Some(dir) = real_feeds() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for (j, file) in feed_files(&dir).into_iter().enumerate() {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        let want = independent_count(&file);
        for (i, format) in ["auto", format_of(&name)].into_iter().enumerate() {
            let feed = format!("ops/file{j}-{i}");
            let sum = summary(&["import", "feed", "--feed", &feed, "--format", format, "--data", s(&data), "--json", s(&file)]);
            assert_eq!(sum["inputs"][0]["format"], format_of(&name), "{name}: detected format");
            assert_eq!(n(&sum, "read"), want, "{name} ({format}): values read vs an independent count");
            assert_eq!(n(&sum, "accepted") + n(&sum, "rejected"), want, "{name}: every value accepted or rejected: {sum}");
            assert_eq!(n(&sum, "stored") + n(&sum, "duplicates"), n(&sum, "accepted"), "{name}");
            assert_eq!(n(&sum, "duplicates"), 0, "{name}: a first import");
            assert_eq!(sum["error"], Value::Null);
            assert_eq!(n(&sum, "exportable"), n(&sum, "distinct") - n(&sum, "excluded") - n(&sum, "held"), "{name}");
            // The same file again adds nothing.
            let again = summary(&["import", "feed", "--feed", &feed, "--format", format, "--data", s(&data), "--json", s(&file)]);
            assert_eq!((n(&again, "stored"), n(&again, "duplicates")), (0, n(&sum, "accepted")), "{name}: re-import");
        }
    }
}

#[test]
fn the_real_files_rejections_and_exclusions_are_the_expected_ones() {
    let Some(dir) = real_feeds() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let imp = |f: &str, feed: &str| summary(&["import", "feed", "--feed", feed, "--data", s(&data), "--json", s(&dir.join(f))]);

    // FireHOL level 1 ends with 224.0.0.0/3 (shorter than /8) and lists bogons (special-use).
    let firehol = imp("firehol_level1.netset", "ops/firehol");
    let short = data_lines(&dir.join("firehol_level1.netset"), &['#'])
        .iter()
        .filter(|l| l.split_once('/').is_some_and(|(_, p)| p.parse::<u8>().unwrap() < 8))
        .count() as u64;
    assert_eq!((n(&firehol, "rejected"), n(&firehol, "min_prefix")), (short, short));
    assert_eq!(firehol["problems"][0]["line"], 2925);
    assert_eq!(firehol["problems"][0]["code"], "prefix_too_short");
    assert!(n(&firehol, "excluded") > 0 && firehol["excluded_by_list"]["special-use"].as_u64().is_some(), "{firehol}");

    // Spamhaus JSON: the trailing metadata record is no value, and its count is checked.
    let drop = imp("spamhaus_drop_v4.json", "ops/drop");
    assert_eq!(n(&drop, "metadata_records"), 1);
    assert!(drop["notes"][0].as_str().unwrap().contains("1406 records listed, 1406 read"), "{drop}");

    // STIX: 10.0.0.0 is private (excluded), the SHA-256 is exported.
    let stix = imp("stix21_bundle_indicators-for-C2-with-COA.json", "ops/stix");
    assert_eq!((n(&stix, "accepted"), n(&stix, "excluded"), n(&stix, "exportable")), (2, 1, 1));

    // MISP: the text, link and filename attributes are skipped, not rejected.
    let misp = imp("misp_event_circl_osint_sednit.json", "ops/misp");
    assert_eq!(n(&misp, "rejected"), 0);
    assert_eq!(n(&misp, "skipped"), 54, "{misp}");
}

/// The issue's round trip: the plain-text export of each imported feed lists the file's values,
/// minus what the exclude, hold and minimum-prefix rules removed, which the import counted.
#[test]
fn round_trip_through_the_plain_text_export() {
    let Some(dir) = real_feeds() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for (j, file) in feed_files(&dir).into_iter().enumerate() {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        let feed = format!("rt/file{j}");
        let sum = summary(&["import", "feed", "--feed", &feed, "--data", s(&data), "--json", s(&file)]);
        let values = exported(&data, &feed);
        let set: BTreeSet<&String> = values.iter().collect();
        assert_eq!(set.len(), values.len(), "{name}: one line per value");
        assert_eq!(values.len() as u64, n(&sum, "exportable"), "{name}: {sum}");
        let removed = n(&sum, "excluded") + n(&sum, "held") + n(&sum, "min_prefix");
        let other_rejections = n(&sum, "rejected") - n(&sum, "min_prefix");
        assert_eq!(other_rejections, 0, "{name}: the real files hold no other bad values: {sum}");
        // Files whose values are written in canonical form: the export is the file's own set.
        let raw: Option<Vec<String>> = match format_of(&name) {
            "text" | "netset" => Some(data_lines(&file, &['#'])),
            "spamhaus-drop" => Some(data_lines(&file, &[';']).iter().map(|l| l.split(';').next().unwrap().trim().to_owned()).collect()),
            _ => None,
        };
        if let Some(raw) = raw {
            let raw: BTreeSet<String> = raw.into_iter().collect();
            assert!(set.iter().all(|v| raw.contains(*v)), "{name}: an exported value that is not in the file");
            assert_eq!(raw.len() as u64 - values.len() as u64, removed, "{name}: file values minus exported = counted removals");
        } else {
            assert_eq!(n(&sum, "distinct") - values.len() as u64, removed - n(&sum, "min_prefix"), "{name}");
        }
    }
}

#[test]
fn standard_input_and_the_human_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_apiary"))
        .args(["import", "feed", "--feed", "ops/stdin", "--data", s(&data), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\xEF\xBB\xBF# a list\n198.51.100.7\n203.0.113.0/24 ; docs\nnot a value!\n0.0.0.0/0\n192.0.2.300\nevil.example.net\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("<stdin> read as text"), "{text}");
    assert!(text.contains("created feed ops/stdin"), "{text}");
    let line = |label: &str| text.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("no `{label}`:\n{text}"));
    assert!(line("values read").contains(" 6 "), "{text}");
    assert!(line("accepted").contains(" 3 "), "{text}");
    for reason in ["invalid_address 1", "prefix_too_short 1", "unknown_type 1"] {
        assert!(line("rejected").contains(reason), "{reason}: {text}");
    }
    // Documentation ranges and a special-use name: stored, never exported.
    assert!(line("excluded").contains(" 3 ") && line("excluded").contains("special-use-names 1"), "{text}");
    assert!(line("exportable").contains(" 0 "), "{text}");
    assert!(line("min prefix").contains(" 1 "), "{text}");
    assert!(text.contains("line 4 of <stdin>"), "{text}");
    assert!(text.contains("line 6 of <stdin>"), "{text}");
}

#[test]
fn bad_arguments_stop_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let o = apiary(&["import", "feed", "--feed", "ops/x", "--data", s(&data), "/nonexistent/list.txt"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/list.txt"), "{}", stderr(&o));
    assert!(!data.exists(), "nothing is created when a file is missing");
    let o = apiary(&["import", "feed", "--feed", "ops/x", "--format", "xml", "--data", s(&data), "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown format `xml`"), "{}", stderr(&o));
    let f = tmp.path().join("t.csv");
    std::fs::write(&f, "a,b\n198.51.100.1,x\n").unwrap();
    let o = apiary(&["import", "feed", "--feed", "ops/x", "--format", "csv", "--column", "ip", "--data", s(&data), s(&f)]);
    assert_ne!(o.status.code(), Some(0));
    assert!(format!("{}{}", stdout(&o), stderr(&o)).contains("no column named `ip`"), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn through_a_hub() {
    let Some(dir) = real_feeds() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = user_with_token(&data, "alice", "read,write");
    let hub = Hub::start(&data);
    let file = dir.join("feodotracker_ipblocklist.csv");
    let args = ["import", "feed", "--feed", "alice/feodo", "--hub", &hub.url, "--token", &token, "--json", s(&file)];
    let first = summary(&args);
    assert_eq!(first["mode"], "hub");
    assert_eq!(first["created_feed"], true);
    assert_eq!((n(&first, "read"), n(&first, "stored"), n(&first, "refused_by_hub")), (28, 28, 0), "{first}");
    let second = summary(&args);
    assert_eq!((n(&second, "stored"), n(&second, "duplicates")), (0, 28), "{second}");
    drop(hub);
    // What the hub stored is what an offline import stores: the same values and ports.
    let values = exported(&data, "alice/feodo");
    assert_eq!(values.len(), 28);
}

#[test]
fn through_a_hub_a_long_inline_comment_is_cut_not_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = user_with_token(&data, "alice", "read,write");
    let hub = Hub::start(&data);
    let file = tmp.path().join("list.txt");
    std::fs::write(&file, format!("101.100.216.61 # {}\n101.50.83.146\n", "c".repeat(5000))).unwrap();
    let args = ["import", "feed", "--feed", "alice/long", "--format", "text", "--hub", &hub.url, "--token", &token, "--json", s(&file)];
    let r = summary(&args);
    assert_eq!((n(&r, "stored"), n(&r, "refused_by_hub"), n(&r, "descriptions_truncated")), (2, 0, 1), "{r}");
}

/// A tiny HTTP server: serves `body` with `etag`, answers 304 to a matching If-None-Match
/// (unless `ignore_etag`), and records each request's headers.
struct Origin {
    url: String,
    state: Arc<Mutex<OriginState>>,
}

#[derive(Default)]
struct OriginState {
    body: Vec<u8>,
    etag: String,
    ignore_etag: bool,
    /// Answer with `Content-Encoding: gzip` (the body is given compressed).
    gzip: bool,
    requests: Vec<Vec<String>>,
}

impl Origin {
    fn start(body: &[u8], etag: &str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/feed.txt", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(OriginState { body: body.to_vec(), etag: etag.into(), ..OriginState::default() }));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut headers = Vec::new();
                let mut rd = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if rd.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    headers.push(line.trim().to_owned());
                }
                let mut s = st.lock().unwrap();
                let inm = headers.iter().find_map(|h| h.to_ascii_lowercase().strip_prefix("if-none-match:").map(|v| v.trim().to_owned()));
                s.requests.push(headers);
                let reply = if !s.ignore_etag && inm.as_deref() == Some(s.etag.to_ascii_lowercase().as_str()) {
                    format!("HTTP/1.1 304 Not Modified\r\nETag: {}\r\nConnection: close\r\n\r\n", s.etag).into_bytes()
                } else {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nETag: {}\r\nLast-Modified: Tue, 01 Apr 2025 00:00:00 GMT\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
                        s.etag,
                        s.body.len(),
                        if s.gzip { "Content-Encoding: gzip\r\n" } else { "" }
                    )
                    .into_bytes();
                    r.extend_from_slice(&s.body);
                    r
                };
                let _ = conn.write_all(&reply);
            }
        });
        Origin { url, state }
    }

    fn last_request_header(&self, name: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        let prefix = format!("{}:", name.to_ascii_lowercase());
        s.requests.last()?.iter().find_map(|h| h.to_ascii_lowercase().starts_with(&prefix).then(|| h[prefix.len()..].trim().to_owned()))
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn pull_decodes_gzip_and_never_remembers_a_body_whose_every_line_was_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let origin = Origin::start(&gzip(b"101.100.216.61\n101.50.83.146\n"), "\"g1\"");
    origin.state.lock().unwrap().gzip = true;
    let pull = || summary(&["pull", &origin.url, "--feed", "ops/gz", "--format", "text", "--data", s(&data), "--json"]);
    let first = pull();
    assert_eq!(first["status"], "imported", "{first}");
    assert_eq!((n(&first["import"], "stored"), n(&first["import"], "rejected")), (2, 0), "{first}");

    // A body of nothing but refused lines is imported (and counted) but not remembered: the
    // next pull of the same body imports it again instead of saying `unchanged`.
    {
        let mut s = origin.state.lock().unwrap();
        s.gzip = false;
        s.ignore_etag = true;
        s.body = b"not a value\nnor this\n".to_vec();
    }
    for _ in 0..2 {
        let r = pull();
        assert_eq!(r["status"], "all_refused", "{r}");
    }

    // `import feed x.gz` reads the file decompressed.
    let file = tmp.path().join("list.txt.gz");
    std::fs::write(&file, gzip(b"101.96.192.88\n")).unwrap();
    let r = summary(&["import", "feed", "--feed", "ops/gzfile", "--format", "text", "--data", s(&data), s(&file), "--json"]);
    assert_eq!(n(&r, "stored"), 1, "{r}");
}

#[test]
fn pull_imports_then_skips_what_did_not_change() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Public addresses (from the Emerging Threats list): documentation ones would not be exported.
    let origin = Origin::start(b"# list\n101.100.216.61\n101.50.83.146\n", "\"v1\"");
    let pull = || summary(&["pull", &origin.url, "--feed", "ops/pulled", "--format", "text", "--data", s(&data), "--json"]);

    let first = pull();
    assert_eq!(first["status"], "imported", "{first}");
    assert_eq!(n(&first["import"], "stored"), 2);
    assert_eq!(origin.last_request_header("if-none-match"), None);
    let state: Value = serde_json::from_str(&std::fs::read_to_string(data.join("pull-state.json")).unwrap()).unwrap();
    let entry = &state[format!("{} ops/pulled", origin.url)];
    assert_eq!(entry["etag"], "\"v1\"", "{state}");
    assert_eq!(entry["last_modified"], "Tue, 01 Apr 2025 00:00:00 GMT");

    // Unchanged: the ETag and Last-Modified go back, the origin answers 304, nothing is imported.
    let second = pull();
    assert_eq!(second["status"], "not_modified", "{second}");
    assert_eq!(second["http_status"], 304);
    assert_eq!(origin.last_request_header("if-none-match").as_deref(), Some("\"v1\""));
    assert_eq!(origin.last_request_header("if-modified-since").as_deref(), Some("Tue, 01 Apr 2025 00:00:00 GMT"));

    // An origin that ignores ETags and sends the same body: noticed by its hash.
    origin.state.lock().unwrap().ignore_etag = true;
    let third = pull();
    assert_eq!(third["status"], "unchanged", "{third}");
    assert_eq!(third["import"], Value::Null);

    // A changed list: imported whole; the value still listed is a duplicate, the new one stored.
    {
        let mut s = origin.state.lock().unwrap();
        s.body = b"101.50.83.146\n101.96.192.88\n".to_vec();
        s.etag = "\"v2\"".into();
        s.ignore_etag = false;
    }
    let fourth = pull();
    assert_eq!(fourth["status"], "imported", "{fourth}");
    assert_eq!((n(&fourth["import"], "stored"), n(&fourth["import"], "duplicates")), (1, 1), "{fourth}");
    let mut values = exported(&data, "ops/pulled");
    values.sort();
    assert_eq!(values, ["101.100.216.61", "101.50.83.146", "101.96.192.88"]);
    assert_eq!(origin.state.lock().unwrap().requests.len(), 4);
}

#[test]
fn pull_reports_http_errors_and_refuses_other_schemes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let o = apiary(&["pull", "ftp://example.invalid/x", "--feed", "ops/x", "--data", s(&data)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not an http or https URL"), "{}", stderr(&o));
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = apiary(&["pull", &format!("http://127.0.0.1:{port}/x"), "--feed", "ops/x", "--data", s(&data)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot fetch"), "{}", stderr(&o));
}

#[test]
fn pull_on_a_schedule_fetches_again_with_the_etag() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let origin = Origin::start(b"101.100.216.61\n", "\"s1\"");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_apiary"))
        .args(["pull", &origin.url, "--feed", "ops/sched", "--data", s(&data), "--every", "1s", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while origin.state.lock().unwrap().requests.len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 2, "{lines:?}");
    assert_eq!(lines[0]["status"], "imported");
    assert!(lines[1..].iter().all(|l| l["status"] == "not_modified"), "{lines:?}");
    assert_eq!(origin.last_request_header("if-none-match").as_deref(), Some("\"s1\""));
}

#[test]
fn several_files_of_different_formats_in_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let list = tmp.path().join("list.txt");
    let table = tmp.path().join("table.csv");
    let bundle = tmp.path().join("bundle.json");
    std::fs::write(&list, "# ips\n101.100.216.61\n101.50.83.146\n").unwrap();
    std::fs::write(&table, "indicator,description\n\"101.96.192.88\",\"c2, seen twice\"\n101.50.83.146,again\n").unwrap();
    std::fs::write(
        &bundle,
        r#"{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","id":"indicator--1","pattern":"[domain-name:value = 'c2.evil-domain.net']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}]}"#,
    )
    .unwrap();
    let sum = summary(&["import", "feed", "--feed", "ops/mixed", "--data", s(&data), "--json", s(&list), s(&table), s(&bundle)]);
    let formats: Vec<&str> = sum["inputs"].as_array().unwrap().iter().map(|i| i["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["text", "csv", "stix"]);
    assert_eq!((n(&sum, "files"), n(&sum, "read"), n(&sum, "accepted"), n(&sum, "distinct")), (3, 5, 5, 4), "{sum}");
    // 101.50.83.146 is in two files without times: the same key, so the second is a duplicate.
    assert_eq!((n(&sum, "stored"), n(&sum, "duplicates")), (4, 1), "{sum}");
    let mut values = exported(&data, "ops/mixed");
    values.sort();
    assert_eq!(values, ["101.100.216.61", "101.50.83.146", "101.96.192.88", "c2.evil-domain.net"]);
}
