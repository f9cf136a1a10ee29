//! Golden files for every export format: a fixed set of records, exported with a fixed time,
//! must give exactly the bytes in `tests/golden/`. Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p apiary-core --test export_golden` and review the diff.

use std::path::PathBuf;

use apiary_core::export::{self, suricata_iprep, Meta, Record};
use apiary_core::IType;
use chrono::{DateTime, TimeZone, Utc};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Row {
    value: &'static str,
    itype: IType,
    tags: Vec<String>,
    ports: Vec<u16>,
    description: Option<&'static str>,
    tlp: &'static str,
    confidence: Option<f64>,
    first: &'static str,
    last: &'static str,
}

fn row(value: &'static str, itype: IType, tags: &[&str], tlp: &'static str) -> Row {
    Row {
        value,
        itype,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ports: Vec::new(),
        description: None,
        tlp,
        confidence: None,
        first: "2026-05-01T10:00:00Z",
        last: "2026-05-30T12:34:56.789Z",
    }
}

/// Every type, quoting hazards (comma, quote, newline, tab, `'` and `\` in a URL), IPv6 with a
/// zero run, CIDRs of both families, and every TLP label.
fn rows() -> Vec<Row> {
    let mut v = vec![
        row("185.220.101.47", IType::Ipv4, &["scanner", "ssh"], "green"),
        row("45.155.205.0/24", IType::Ipv4, &["bruteforce"], "clear"),
        row("2a03:b0c0:3:d0::1", IType::Ipv6, &["scanner"], "green"),
        row("2a0e:1c80::/32", IType::Ipv6, &[], "amber"),
        row("185.244.25.10", IType::Ipv4, &["c2", "botnet"], "red"),
        row("evil-updates.xyz", IType::Fqdn, &["phishing"], "green"),
        row("http://bad-host.xyz:8080/it's\\here?a=1,b=\"2\"", IType::Url, &["malware"], "green"),
        row("abuse@bad-host.xyz", IType::Email, &["spam"], "green"),
        row("44d88612fea8a8f36de82e1278abb02f", IType::Md5, &["malware"], "green"),
        row("3395856ce81f2b7382dee72602f798b642f14140", IType::Sha1, &[], "green"),
        row("275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", IType::Sha256, &["malware"], "green"),
        row("AS64496", IType::Asn, &["bulletproof"], "green"),
    ];
    v[0].ports = vec![22, 2222];
    v[0].confidence = Some(8.5);
    v[0].description = Some("ssh brute force, \"root\" logins,\ntwo lines\tand a tab");
    // Control characters a reporter sent (ESC, NUL, DEL, a C1 NEL): quoted-and-left-out in CSV,
    // `\xNN` in Zeek, escaped in JSON, never raw.
    v[5].description = Some("login page,\u{1b}[31m credential\0 harvest\u{7f}\u{85}");
    v[9].tags = vec!["dropper\u{1b}[0m".into()];
    v[5].confidence = Some(6.0);
    v[2].first = "2026-05-29T00:00:00Z";
    v[2].last = "2026-05-29T00:00:00Z";
    v
}

fn records(rows: &[Row]) -> Vec<Record<'_>> {
    rows.iter()
        .map(|r| Record {
            value: r.value,
            itype: r.itype,
            feed: "alice/honeypot",
            firsttime: at(r.first),
            lasttime: at(r.last),
            reporttime: at(r.last),
            count: 3,
            tags: &r.tags,
            ports: &r.ports,
            protocol: if r.itype.is_address() { Some("tcp") } else { None },
            description: r.description,
            tlp: r.tlp,
            confidence: r.confidence,
            held: r.value == "2a0e:1c80::/32",
        })
        .collect()
}

fn meta() -> Meta {
    let mut m = Meta::new(
        "alice/honeypot",
        "alice",
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
    );
    m.filter = "type any, window default (addresses 21 days, others 45 days)".into();
    m.base_url = Some("https://hub.example.org".into());
    m.set_name = "apiary-honeypot".into();
    m.zone = "rpz.apiary.example.".into();
    m
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn check(name: &str, got: &[u8]) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if want != got {
        panic!(
            "{name} differs from {}\n--- got ---\n{}\n--- want ---\n{}",
            path.display(),
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(&want)
        );
    }
}

fn file_name(format: &str) -> String {
    let ext = match format {
        "text" | "nginx" | "nginx-geo" | "ipset" => "txt",
        "csv" => "csv",
        "json" | "stix" => "json",
        "jsonl" => "jsonl",
        "zeek" => "intel",
        "suricata-iprep" => "iprep",
        "suricata-rules" | "snort" => "rules",
        "rpz" => "zone",
        other => other,
    };
    format!("{format}.{ext}")
}

#[test]
fn every_format_matches_its_golden_file() {
    let rows = rows();
    let recs = records(&rows);
    for spec in export::FORMATS {
        let mut f = (spec.new)(&meta());
        let mut out = Vec::new();
        export::write_all(f.as_mut(), recs.iter().copied(), &mut out).unwrap();
        // The rows carry NUL, ESC, DEL and NEL: no format writes a control character raw (JSON
        // escapes C0 as `\uNNNN`; DEL and C1 are plain characters of a JSON string).
        let text = String::from_utf8(out.clone()).unwrap();
        let json = matches!(spec.name, "json" | "jsonl" | "stix");
        let raw: Vec<char> =
            text.chars().filter(|&c| c.is_control() && !matches!(c, '\t' | '\r' | '\n') && !(json && c > '\u{1f}')).collect();
        assert!(raw.is_empty(), "{}: raw control characters {raw:?}", spec.name);
        check(&file_name(spec.name), &out);
    }
    check("suricata-iprep.categories", suricata_iprep::categories().as_bytes());
}

#[test]
fn json_formats_parse_and_carry_every_record() {
    let rows = rows();
    let recs = records(&rows);
    let run = |name: &str| {
        let mut f = (export::by_name(name).unwrap().new)(&meta());
        let mut out = Vec::new();
        export::write_all(f.as_mut(), recs.iter().copied(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let arr: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(arr.as_array().unwrap().len(), recs.len());
    assert_eq!(arr[0]["description"], rows[0].description.unwrap());
    let lines: Vec<serde_json::Value> = run("jsonl").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), recs.len());
    assert_eq!(lines[6]["indicator"], rows[6].value);
    let bundle: serde_json::Value = serde_json::from_str(&run("stix")).unwrap();
    let objects = bundle["objects"].as_array().unwrap();
    let indicators: Vec<_> = objects.iter().filter(|o| o["type"] == "indicator").collect();
    assert_eq!(indicators.len(), recs.len());
    // Markings: exactly the four used labels (clear is TLP 1.0 white).
    let markings: Vec<_> = objects.iter().filter(|o| o["type"] == "marking-definition").map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(markings, ["TLP:WHITE", "TLP:GREEN", "TLP:AMBER", "TLP:RED"]);
    assert_eq!(indicators[6]["pattern"], r#"[url:value = 'http://bad-host.xyz:8080/it\'s\\here?a=1,b="2"']"#);
}

#[test]
fn csv_round_trips_through_a_csv_reader() {
    let rows = rows();
    let recs = records(&rows);
    let mut out = Vec::new();
    export::write_all((export::by_name("csv").unwrap().new)(&meta()).as_mut(), recs.iter().copied(), &mut out).unwrap();
    // A minimal RFC 4180 reader: quoted fields may hold commas, quotes ("") and line breaks.
    let text = String::from_utf8(out).unwrap();
    let mut records_read: Vec<Vec<String>> = vec![vec![String::new()]];
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        let rec = records_read.last_mut().unwrap();
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                rec.last_mut().unwrap().push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => rec.last_mut().unwrap().push(c),
            (false, '"') => quoted = true,
            (false, ',') => rec.push(String::new()),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "CR only as part of CRLF"),
            (false, c) => rec.last_mut().unwrap().push(c),
        }
        if !quoted && c == '\r' {
            records_read.push(vec![String::new()]);
        }
    }
    records_read.pop();
    assert_eq!(records_read.len(), recs.len() + 1);
    assert!(records_read.iter().all(|r| r.len() == export::csv::COLUMNS.len()));
    assert_eq!(records_read[1][10], rows[0].description.unwrap());
    assert_eq!(records_read[7][0], rows[6].value);
}
