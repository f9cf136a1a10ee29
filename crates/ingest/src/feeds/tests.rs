//! Golden tests of every feed format on small inline fixtures (nasty ones included), the
//! reader's counts, detection, and the shared case TI-16.

use super::*;
use apiary_core::IType;
use std::path::PathBuf;

/// Reports and stats through the reader (the core parser included).
fn import(format: &str, input: &[u8], opts: Options) -> (Vec<Report>, ReadStats, &'static str) {
    let mut rdr = FeedReader::new(ReadOptions { format: opts, ..ReadOptions::default() });
    let mut reports = Vec::new();
    let used = rdr.read(super::format(format).unwrap(), "fixture", input, &mut |r| reports.push(r)).unwrap();
    (reports, rdr.into_stats(), used)
}

/// (itype, value) of each report.
fn values(reports: &[Report]) -> Vec<(IType, &str)> {
    reports.iter().map(|r| (r.indicator.itype, r.indicator.value.as_str())).collect()
}

/// (line, code) of each problem.
fn problems(st: &ReadStats) -> Vec<(u64, &str)> {
    st.problems.iter().map(|p| (p.line, p.code.as_str())).collect()
}

#[test]
fn registry_lists_every_format_once_by_name() {
    let names = format_names();
    assert_eq!(
        names,
        ["auto", "text", "netset", "spamhaus-drop", "spamhaus-drop-json", "abusech-csv", "csv", "jsonl", "stix", "misp"]
    );
    for n in names {
        assert_eq!(format(n).unwrap().name(), n);
        assert!(!format(n).unwrap().about().is_empty());
    }
    assert!(format("xml").is_none());
}

#[test]
fn text_comments_inline_comments_blank_lines_and_fragments() {
    let input = b"# a list\n; also a comment\n\n198.51.100.7\n  203.0.113.9   # scanner seen twice\nhttp://a.example.net/x#frag\nevil.example.org ; c2 domain\n192.0.2.300\n198.51.100.8 brute force\n";
    let (reports, st, _) = import("text", input, Options::default());
    assert_eq!(
        values(&reports),
        [
            (IType::Ipv4, "198.51.100.7"),
            (IType::Ipv4, "203.0.113.9"),
            (IType::Url, "http://a.example.net/x#frag"),
            (IType::Fqdn, "evil.example.org"),
            (IType::Ipv4, "198.51.100.8"),
        ]
    );
    assert_eq!(reports[1].description.as_deref(), Some("scanner seen twice"));
    assert_eq!(reports[3].description.as_deref(), Some("c2 domain"));
    assert_eq!(reports[4].description.as_deref(), Some("brute force"));
    assert_eq!((st.comment_lines, st.blank_lines, st.lines), (2, 1, 9));
    assert_eq!((st.read, st.accepted, st.rejected), (6, 5, 1));
    assert_eq!(problems(&st), [(8, "invalid_address")]);
}

#[test]
fn netset_family_category_and_prefix_rules() {
    let input = b"#\n# ipv4 hash:net ipset\n# Category        : attacks\n#\n0.0.0.0/0\n0.0.0.0/8\n198.51.100.0/24\n203.0.113.7\nevil.example.org\n224.0.0.0/3\n::ffff:198.51.100.9\n";
    let (reports, st, _) = import("netset", input, Options::default());
    assert_eq!(
        values(&reports),
        [(IType::Ipv4, "0.0.0.0/8"), (IType::Ipv4, "198.51.100.0/24"), (IType::Ipv4, "203.0.113.7"), (IType::Ipv4, "198.51.100.9")]
    );
    assert!(reports.iter().all(|r| r.tags == ["attacks"]));
    assert_eq!(problems(&st), [(5, "prefix_too_short"), (9, "type_mismatch"), (10, "prefix_too_short")]);
    assert_eq!(st.min_prefix, 2);
    // 0.0.0.0/8, the documentation ranges: all special-use, so excluded from exports.
    assert_eq!((st.distinct, st.excluded, st.held, st.exportable), (4, 4, 0, 0));
    assert_eq!(reports[3].extra["original_indicator"], "::ffff:198.51.100.9");
}

#[test]
fn spamhaus_drop_text() {
    let input = b"; Spamhaus DROP List 2023/02/20\n; Last-Modified: Sun, 19 Feb 2023 22:03:03 GMT\n1.10.16.0/20 ; SBL256894\n5.42.199.0/24;SBL616002\n2.56.192.0/22\nnot a cidr ; SBL1\n";
    let (reports, st, _) = import("spamhaus-drop", input, Options::default());
    assert_eq!(values(&reports), [(IType::Ipv4, "1.10.16.0/20"), (IType::Ipv4, "5.42.199.0/24"), (IType::Ipv4, "2.56.192.0/22")]);
    assert_eq!(reports[0].extra["sblid"], "SBL256894");
    assert_eq!(reports[1].description.as_deref(), Some("SBL616002"));
    assert_eq!(problems(&st), [(6, "bad_row")]);
    assert_eq!(st.comment_lines, 2);
}

#[test]
fn spamhaus_drop_json_with_metadata_record() {
    let input = br#"{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
{"cidr":"2.56.192.0/22","sblid":"SBL459831","rir":"ripencc"}
not json
{"sblid":"SBL1"}
{"type":"metadata","timestamp":1744682874,"size":85741,"records":4,"copyright":"(c) 2025 The Spamhaus Project SLU"}
"#;
    let (reports, st, _) = import("spamhaus-drop-json", input, Options::default());
    assert_eq!(values(&reports), [(IType::Ipv4, "1.10.16.0/20"), (IType::Ipv4, "2.56.192.0/22")]);
    assert_eq!(reports[0].extra["rir"], "apnic");
    assert_eq!(problems(&st), [(3, "not_json"), (4, "missing_field")]);
    assert_eq!(st.metadata_records, 1);
    // Three data rows were read (one had no cidr), the metadata says four: noted.
    assert!(st.notes[0].contains("4 records listed but 3 read"), "{:?}", st.notes);
    let (_, ok, _) = import("spamhaus-drop-json", b"{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"S\"}\n{\"type\":\"metadata\",\"records\":1}", Options::default());
    assert!(ok.notes[0].contains("1 records listed, 1 read"), "{:?}", ok.notes);
}

const FEODO: &[u8] = b"################################################################\n\
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #\n\
################################################################\n\
#\n\
\"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
\"2023-05-23 17:51:44\",\"192.9.135.73\",\"1194\",\"online\",\"2024-04-01\",\"Pikabot\"\n\
\"2024-02-08 19:20:49\",\"85.239.243.155\",\"5000\",\"offline\",\"2024-03-11\",\"Pikabot\"\n\
\"2024-02-08 19:20:50\",\"10.1.2.3\",\"80\",\"offline\",\"2024-03-11\",\"QakBot\"\n\
# END 3 entries\n";

#[test]
fn abusech_feodo_quoted_header_after_comments() {
    let (reports, st, used) = import("auto", FEODO, Options::default());
    assert_eq!(used, "abusech-csv");
    assert_eq!(values(&reports), [(IType::Ipv4, "192.9.135.73"), (IType::Ipv4, "85.239.243.155"), (IType::Ipv4, "10.1.2.3")]);
    let r = &reports[0];
    assert_eq!(r.port, Some(1194));
    assert_eq!(r.tags, ["pikabot"]);
    assert_eq!(r.observed_at.map(apiary_core::format_time).as_deref(), Some("2023-05-23T17:51:44Z"));
    assert_eq!(r.observed_until.map(apiary_core::format_time).as_deref(), Some("2024-04-01T00:00:00Z"));
    assert_eq!(r.extra["c2_status"], "online");
    // Four comment lines before the table and `# END 3 entries` after it.
    assert_eq!((st.header_rows, st.comment_lines, st.rejected), (1, 5, 0));
    assert_eq!((st.excluded, st.exportable), (1, 2));
}

#[test]
fn abusech_urlhaus_header_in_comment_and_tags_with_commas() {
    let input = b"################################################################\n\
# abuse.ch URLhaus Database Dump (CSV - recent URLs)           #\n\
################################################################\n\
#\n\
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
\"3520667\",\"2025-04-21 12:35:06\",\"http://117.209.87.242:60905/bin.sh\",\"online\",\"2025-04-21 12:35:06\",\"malware_download\",\"32-bit,elf,mips,Mozi\",\"https://urlhaus.abuse.ch/url/3520667/\",\"geenensp\"\n\
\"3520666\",\"2025-04-21 12:33:09\",\"hxxp://bad.example.net/i\",\"offline\",\"\",\"malware_download\",\"None\",\"https://urlhaus.abuse.ch/url/3520666/\",\"x\"\n";
    let (reports, st, used) = import("auto", input, Options::default());
    assert_eq!(used, "abusech-csv");
    assert_eq!(values(&reports), [(IType::Url, "http://117.209.87.242:60905/bin.sh"), (IType::Url, "http://bad.example.net/i")]);
    assert_eq!(reports[0].tags, ["malware_download", "32-bit", "elf", "mips", "mozi"]);
    assert_eq!(reports[0].port, Some(60905));
    assert_eq!(reports[0].extra["urlhaus_link"], "https://urlhaus.abuse.ch/url/3520667/");
    assert_eq!(reports[1].tags, ["malware_download"], "URLhaus writes `None` for no tags");
    assert_eq!(reports[1].extra["original_indicator"], "hxxp://bad.example.net/i");
    assert_eq!((st.header_rows, st.comment_lines, st.rejected), (0, 5, 0));
}

#[test]
fn abusech_threatfox_spaced_quotes_and_type_hints() {
    let input = b"################################################################\n\
# ThreatFox IOCs: CSV export                                    #\n\
################################################################\n\
#\n\
# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\
\"2025-04-21 12:00:00\", \"1479001\", \"45.155.205.1:8080\", \"ip:port\", \"botnet_cc\", \"win.cobalt_strike\", \"Agentemis\", \"Cobalt Strike\", \"\", \"100\", \"\", \"c2,CobaltStrike\", \"0\", \"abuse_ch\"\n\
\"2025-04-21 12:01:00\", \"1479002\", \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4\", \"md5_hash\", \"payload\", \"x\", \"\", \"X\", \"\", \"50\", \"\", \"None\", \"0\", \"y\"\n";
    let (r, st, used) = import("auto", input, Options::default());
    assert_eq!(used, "abusech-csv");
    assert_eq!(values(&r), [(IType::Ipv4, "45.155.205.1")]);
    assert_eq!(r[0].port, Some(8080));
    assert_eq!(r[0].tags, ["cobalt strike", "botnet_cc", "c2", "cobaltstrike"]);
    assert_eq!(r[0].observed_at.map(apiary_core::format_time).as_deref(), Some("2025-04-21T12:00:00Z"));
    assert_eq!(r[0].extra["confidence_level"], "100");
    // `md5_hash` is the hint: 40 hex characters are no MD5.
    assert_eq!(problems(&st), [(7, "type_mismatch")].map(|(l, _)| (l, st.problems[0].code.as_str())));
    assert_eq!(st.rejected, 1);
}

#[test]
fn csv_bom_comments_before_header_quoted_newline_and_nasty_values() {
    let mut input = b"\xEF\xBB\xBF# exported 2019-07-06\n\n".to_vec();
    input.extend_from_slice(
        b"indicator,description,tags\n\
198.51.100.9,scanner,\"ssh,telnet\"\n\
\"203.0.113.5\",\"line one\nline two, with a comma\",\n\
ffffffffffffffffffffffffffffffffffffffffa,41 hex characters,\n\
0.0.0.0/0,everything,\n\
::ffff:198.51.100.7,mapped,\n\
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,empty file,\n\
short-row\n\
\"say \"\"hi\"\"\",quoted quotes,\n",
    );
    let (reports, st, used) = import("auto", &input, Options::default());
    assert_eq!(used, "csv");
    assert_eq!(
        values(&reports),
        [
            (IType::Ipv4, "198.51.100.9"),
            (IType::Ipv4, "203.0.113.5"),
            (IType::Ipv4, "198.51.100.7"),
            (IType::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ]
    );
    assert_eq!(reports[0].tags, ["ssh", "telnet"]);
    assert_eq!(reports[1].description.as_deref(), Some("line one\nline two, with a comma"));
    assert!(reports[2].indicator.flags.contains(&apiary_core::Flag::Mapped));
    // Lines: the row with the quoted newline starts on line 5 and ends on 6, so the next is 7.
    assert_eq!(problems(&st), [(7, "bad_hash_length"), (8, "prefix_too_short"), (11, "unknown_type"), (12, "invalid_domain")]);
    assert_eq!((st.header_rows, st.comment_lines, st.blank_lines), (1, 1, 1));
    assert_eq!((st.read, st.accepted, st.rejected, st.min_prefix), (8, 4, 4, 1));
    // Documentation addresses and the empty file's hash: excluded by the built-in lists.
    assert_eq!(st.excluded, 4);
    assert_eq!(st.excluded_by_list.get("empty-file-hashes"), Some(&1));
    assert_eq!(st.lines, 12);
}

#[test]
fn csv_column_by_name_number_and_headerless() {
    let input = b"first_seen,host,ip,note\n2024-01-02,evil.example.org,198.51.100.1,c2\n2024-01-03,bad.example.org,198.51.100.2,\n";
    let by_name = |c: &str| {
        let (r, st, _) = import("csv", input, Options { column: Some(Column::from_arg(c).unwrap()) });
        assert_eq!(st.rejected, 0);
        r.iter().map(|r| r.indicator.value.clone()).collect::<Vec<_>>()
    };
    assert_eq!(by_name("ip"), ["198.51.100.1", "198.51.100.2"]);
    assert_eq!(by_name(" IP "), ["198.51.100.1", "198.51.100.2"]);
    assert_eq!(by_name("2"), ["evil.example.org", "bad.example.org"]);
    // Without --column: the header names in their order of preference (`ip` before `host`).
    assert_eq!(by_name_default(input), ["198.51.100.1", "198.51.100.2"]);
    let (r, _, _) = import("csv", input, Options { column: Some(Column::Name("ip".into())) });
    assert_eq!(r[0].observed_at.map(apiary_core::format_time).as_deref(), Some("2024-01-02T00:00:00Z"));
    assert_eq!(r[0].extra["host"], "evil.example.org");
    assert_eq!(r[0].description.as_deref(), Some("c2"), "`note` is a description column");

    // No header: the first row is data; the value is the first cell that is one.
    let (r, st, _) = import("csv", b"42,198.51.100.3,x\n43,198.51.100.4,y\n", Options::default());
    assert_eq!(values(&r), [(IType::Ipv4, "198.51.100.3"), (IType::Ipv4, "198.51.100.4")]);
    assert_eq!(st.header_rows, 0);
    assert_eq!(r[0].extra["column_3"], "x");

    // A column name that is not in the header stops the file with a message.
    let mut rdr = FeedReader::new(ReadOptions { format: Options { column: Some(Column::Name("addr".into())) }, ..ReadOptions::default() });
    let err = rdr.read(&Csv, "x.csv", &input[..], &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("no column named `addr`"), "{err}");
    assert!(Column::from_arg("0").is_err());
}

fn by_name_default(input: &[u8]) -> Vec<String> {
    import("csv", input, Options::default()).0.iter().map(|r| r.indicator.value.clone()).collect()
}

use super::csv::Csv;

#[test]
fn csv_header_without_a_value_name_picks_the_column_from_data() {
    let input = b"when,what,who\n2024-01-01,evil.example.org,me\n2024-01-02,198.51.100.5,you\n";
    let (r, st, _) = import("csv", input, Options::default());
    // `when` holds a date, which is no indicator; `what` is the first column with one.
    assert_eq!(values(&r), [(IType::Fqdn, "evil.example.org"), (IType::Ipv4, "198.51.100.5")]);
    assert_eq!(st.rejected, 0);
}

#[test]
fn jsonl_native_fields() {
    let input = br#"{"indicator":"198.51.100.7","itype":"ipv4","tags":["scanner","SSH"],"description":"d","firsttime":"2024-05-01T00:00:00Z","lasttime":"2024-05-02T00:00:00Z","portlist":22,"protocol":"TCP","tlp":"amber","confidence":7,"asn":64500}
{"indicator":"evil.example.org","tags":"c2, botnet"}
{"indicator":"198.51.100.8","itype":"sha1"}
{"indicator":"x","itype":"colour"}
{"value":"no indicator field"}
[1,2]
"#;
    let (r, st, _) = import("jsonl", input, Options::default());
    assert_eq!(values(&r), [(IType::Ipv4, "198.51.100.7"), (IType::Fqdn, "evil.example.org")]);
    let a = &r[0];
    assert_eq!(a.tags, ["scanner", "ssh"]);
    assert_eq!((a.port, a.protocol.as_deref(), a.description.as_deref()), (Some(22), Some("tcp"), Some("d")));
    assert_eq!(a.extra["tlp"], "amber");
    assert_eq!(a.extra["confidence"], 7);
    assert_eq!(a.extra["asn"], 64500);
    assert!(a.observed_until.is_some());
    assert_eq!(r[1].tags, ["c2", "botnet"]);
    assert_eq!(problems(&st), [(3, "type_mismatch"), (4, "unknown_type"), (5, "missing_field"), (6, "not_an_object")]);
}

const STIX: &str = r#"{
  "type": "bundle",
  "id": "bundle--1",
  "objects": [
    {"type": "identity", "id": "identity--1", "name": "x"},
    {
      "type": "indicator", "spec_version": "2.1", "id": "indicator--a",
      "name": "C2 hosts", "indicator_types": ["malicious-activity"],
      "pattern": "[ipv4-addr:value = '198.51.100.7' OR ipv4-addr:value = '198.51.100.8'] OR [domain-name:value = 'c2.example.org']",
      "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z", "confidence": 80,
      "object_marking_refs": ["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]
    },
    {
      "type": "indicator", "id": "indicator--b",
      "pattern": "[file:hashes.'SHA-256' = 'EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C' AND file:name = 'x.exe']",
      "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"
    },
    {"type": "indicator", "id": "indicator--c", "pattern": "[url:value = 'http://a.example.net/it\\'s'] WITHIN 600 SECONDS", "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "id": "indicator--d", "pattern": "[email-addr:value = 'x@bad.example.org' OR ipv6-addr:value ISSUBSET '2001:db8::/32']", "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "id": "indicator--e", "pattern": "alert tcp any any -> any any (sid:1;)", "pattern_type": "snort", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "id": "indicator--f", "pattern": "[ipv4-addr:value = '198.51.100.9", "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "id": "indicator--g", "pattern": "[domain-name:value MATCHES '^evil']", "valid_from": "2024-01-01T00:00:00Z"}
  ]
}"#;

#[test]
fn stix_patterns() {
    let (r, st, used) = import("auto", STIX.as_bytes(), Options::default());
    assert_eq!(used, "stix");
    assert_eq!(
        values(&r),
        [
            (IType::Ipv4, "198.51.100.7"),
            (IType::Ipv4, "198.51.100.8"),
            (IType::Fqdn, "c2.example.org"),
            (IType::Sha256, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"),
            (IType::Url, "http://a.example.net/it's"),
            (IType::Email, "x@bad.example.org"),
            (IType::Ipv6, "2001:db8::/32"),
        ]
    );
    let a = &r[0];
    assert_eq!(a.extra["tlp"], "red", "the strictest marking wins");
    assert_eq!(a.extra["stix_id"], "indicator--a");
    assert_eq!(a.extra["confidence"], 80);
    assert_eq!(a.tags, ["malicious-activity"]);
    assert_eq!(a.description.as_deref(), Some("C2 hosts"));
    assert_eq!(a.observed_at.map(apiary_core::format_time).as_deref(), Some("2024-01-01T00:00:00Z"));
    let line_f = STIX.lines().position(|l| l.contains("indicator--f")).unwrap() as u64 + 1;
    assert_eq!(problems(&st), [(line_f, "bad_pattern")]);
    assert_eq!(st.skipped, 3, "{:?}", st.skipped_by_reason);
    assert_eq!(st.skipped_by_reason.get("STIX pattern_type `snort`"), Some(&1));
    assert_eq!(st.skipped_by_reason.get("STIX comparison `file:name =` names no indicator value"), Some(&1));
}

#[test]
fn stix_pattern_comparisons() {
    let c = stix::comparisons("([ipv4-addr:value = '198.51.100.1'] AND [file:hashes.MD5 != 'x']) FOLLOWEDBY [x-c:p IN ('a','b')] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'").unwrap();
    let got: Vec<(&str, &str, &str)> = c.iter().map(|c| (c.path.as_str(), c.op.as_str(), c.value.as_str())).collect();
    assert_eq!(got, [("ipv4-addr:value", "=", "198.51.100.1"), ("file:hashes.MD5", "!=", "x"), ("x-c:p", "IN", "a,b")]);
    assert!(stix::comparisons("[url:value = 'a\\\\b\\'c']").unwrap()[0].value == "a\\b'c");
    assert!(stix::comparisons("no brackets").is_err());
    assert!(stix::comparisons("[url:value = ]").is_err());
}

const MISP: &str = r#"{"Event": {
  "id": "9747", "uuid": "ev-1", "info": "OSINT - test event",
  "Tag": [{"name": "tlp:white"}, {"name": "misp-galaxy:threat-actor=\"Sofacy\""}],
  "Attribute": [
    {"uuid": "a1", "type": "domain", "category": "Network activity", "to_ids": true, "value": "c2.example.org", "timestamp": "1513948642", "comment": ""},
    {"uuid": "a2", "type": "ip-dst|port", "category": "Network activity", "to_ids": true, "value": "198.51.100.7|8443", "timestamp": "1513948642",
     "Tag": [{"name": "tlp:amber"}]},
    {"uuid": "a3", "type": "link", "to_ids": false, "value": "https://blog.example.com/post"},
    {"uuid": "a4", "type": "text", "to_ids": false, "value": "some words"},
    {"uuid": "a5", "type": "domain|ip", "to_ids": "1", "value": "www.bad.example.org|203.0.113.9", "comment": "both"},
    {"uuid": "a6", "type": "url", "to_ids": false, "value": "http://not-for-ids.example.org/"},
    {"uuid": "a7", "type": "md5", "to_ids": true, "value": "not-a-hash"},
    {"uuid": "a8", "type": "ip-src", "to_ids": true, "value": "2001:db8::1", "deleted": true}
  ],
  "Object": [
    {"name": "file", "Attribute": [
      {"uuid": "o1", "type": "filename", "to_ids": true, "value": "Bulletin.doc"},
      {"uuid": "o2", "type": "sha1", "to_ids": true, "value": "68064FC152E23D56E541714AF52651CB4BA81AAF"},
      {"uuid": "o3", "type": "filename|sha256", "to_ids": true, "value": "x.exe|ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"}
    ]}
  ]
}}"#;

#[test]
fn misp_attributes_and_objects() {
    let (r, st, used) = import("auto", MISP.as_bytes(), Options::default());
    assert_eq!(used, "misp");
    assert_eq!(
        values(&r),
        [
            (IType::Fqdn, "c2.example.org"),
            (IType::Ipv4, "198.51.100.7"),
            (IType::Fqdn, "www.bad.example.org"),
            (IType::Ipv4, "203.0.113.9"),
            (IType::Sha1, "68064fc152e23d56e541714af52651cb4ba81aaf"),
            (IType::Sha256, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"),
        ]
    );
    assert_eq!(r[0].tags, ["sofacy"]);
    assert_eq!(r[0].extra["tlp"], "clear");
    assert_eq!(r[0].description.as_deref(), Some("OSINT - test event"));
    assert_eq!(r[0].observed_at.map(apiary_core::format_time).as_deref(), Some("2017-12-22T13:17:22Z"));
    assert_eq!(r[1].port, Some(8443));
    assert_eq!(r[1].extra["tlp"], "amber", "the attribute's own TLP tag");
    assert_eq!(r[2].description.as_deref(), Some("both"));
    assert_eq!(r[4].extra["misp_object"], "file");
    assert_eq!(r[5].extra["filename"], "x.exe");
    let line_of = |u: &str| MISP.lines().position(|l| l.contains(&format!("\"{u}\""))).unwrap() as u64 + 1;
    assert_eq!(problems(&st), [(line_of("a7"), "invalid_domain")].map(|(l, _)| (l, st.problems[0].code.as_str())));
    assert_eq!(st.rejected, 1);
    assert_eq!(st.skipped_by_reason.get("MISP to_ids off"), Some(&1));
    for t in ["link", "text", "filename"] {
        assert_eq!(st.skipped_by_reason.get(&format!("MISP type `{t}` is not an indicator")), Some(&1), "{t}");
    }
    assert_eq!(st.skipped_by_reason.get("MISP attribute deleted"), Some(&1));
}

#[test]
fn detection_of_each_shape() {
    let cases: [(&str, &str); 9] = [
        ("198.51.100.1\n198.51.100.2\n", "text"),
        ("#\n# ipv4 hash:net ipset\n#\n198.51.100.0/24\n", "netset"),
        ("; Spamhaus DROP\n1.10.16.0/20 ; SBL256894\n", "spamhaus-drop"),
        ("{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\",\"rir\":\"apnic\"}\n", "spamhaus-drop-json"),
        ("id,dateadded,url,url_status\n\"1\",\"2025-01-01\",\"http://a.example.net/\",\"online\"\n", "abusech-csv"),
        ("indicator,description\n198.51.100.9,scanner\n", "csv"),
        ("{\"indicator\":\"198.51.100.9\"}\n", "jsonl"),
        ("{\"type\":\"bundle\",\"objects\":[]}", "stix"),
        ("{\n  \"Attribute\": []\n}", "misp"),
    ];
    for (input, want) in cases {
        assert_eq!(auto::detect_text(input).name(), want, "{input:?}");
    }
    assert_eq!(auto::detect_text("\u{feff}# c\n\nindicator,description\n198.51.100.9,scanner\n").name(), "csv");
}

/// A pipe that hands out one byte per read: detection still sees the first 64 KiB.
#[test]
fn detection_reads_past_short_reads() {
    struct OneByte<'a>(&'a [u8]);
    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.is_empty()) {
                (Some((b, rest)), false) => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
    for (input, want) in [(STIX.as_bytes(), "stix"), (MISP.as_bytes(), "misp"), (FEODO, "abusech-csv")] {
        let mut rdr = FeedReader::new(ReadOptions::default());
        let mut n = 0;
        let used = rdr.read(&auto::Auto, "pipe", OneByte(input), &mut |_| n += 1).unwrap();
        assert_eq!(used, want);
        assert!(n > 0);
    }
}

#[test]
fn bad_rows_never_stop_the_file_and_keys_are_stable() {
    let mut input = String::new();
    for i in 0..300 {
        if i % 3 == 0 {
            input.push_str("garbage value here!!\n");
        } else {
            input.push_str(&format!("198.51.{}.{}\n", i / 250, i % 250));
        }
    }
    let (a, st, _) = import("text", input.as_bytes(), Options::default());
    assert_eq!((st.read, st.accepted, st.rejected), (300, 200, 100));
    assert_eq!(st.problems.len(), 100, "listed up to max_problems");
    let (b, _, _) = import("text", input.as_bytes(), Options::default());
    assert_eq!(a.iter().map(|r| &r.idempotency_key).collect::<Vec<_>>(), b.iter().map(|r| &r.idempotency_key).collect::<Vec<_>>());
    let mut keys: Vec<&String> = a.iter().map(|r| &r.idempotency_key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 200, "one key per value");
}

#[test]
fn invalid_utf8_is_read_with_replacement() {
    let (r, st, _) = import("text", b"198.51.100.1 caf\xE9\n\xFF\xFE\n", Options::default());
    assert_eq!(values(&r), [(IType::Ipv4, "198.51.100.1")]);
    assert_eq!(r[0].description.as_deref(), Some("caf\u{FFFD}"));
    assert_eq!(st.rejected, 1);
}

/// `../shared/cases/indicators.jsonl`: required in CI, skipped with a message elsewhere.
fn shared_cases() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cases/indicators.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true but {} is not readable: {e}", path.display()),
        Err(e) => {
            eprintln!("skipping: {} not readable ({e}); set CI=true to make this an error", path.display());
            None
        }
    }
}

/// TI-16: a UTF-8 BOM, a `#` comment and a blank line before the header; the `indicator`
/// column found by name. The case's `<EF BB BF>` stands for the three BOM bytes.
#[test]
fn shared_case_ti16_csv_bom_and_comments() {
    let Some(text) = shared_cases() else { return };
    let case: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|c| c["id"] == "TI-16")
        .expect("TI-16 is in the cases file");
    assert_eq!(case["kind"], "csv-bom-and-comments");
    let input = case["input"].as_str().unwrap().replace("<EF BB BF>", "\u{feff}");
    assert!(input.as_bytes().starts_with(b"\xEF\xBB\xBF#"));
    let expected = case["expected"]["records"].as_array().unwrap();
    for format in ["csv", "auto"] {
        let (r, st, used) = import(format, input.as_bytes(), Options::default());
        assert_eq!(used, "csv");
        assert_eq!(r.len(), expected.len(), "{format}: {r:?}");
        for (got, want) in r.iter().zip(expected) {
            assert_eq!(got.indicator.itype.as_str(), want["itype"], "{format}");
            assert_eq!(got.indicator.value, want["value"].as_str().unwrap(), "{format}");
            assert_eq!(got.description.as_deref(), want["description"].as_str(), "{format}");
        }
        assert_eq!((st.header_rows, st.comment_lines, st.blank_lines, st.rejected), (1, 1, 1, 0), "{format}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A description cell with the characters that break naive CSV readers.
    fn cell() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop_oneof![Just(','), Just('"'), Just('\n'), Just('\r'), Just(' '), Just('#'), Just('x'), Just('é')], 0..12)
            .prop_map(|c| c.into_iter().collect::<String>())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Whatever the other cells hold, a CSV written by an RFC 4180 writer reads back with
        /// the same values and descriptions, and each row's line is where it starts.
        #[test]
        fn csv_written_by_a_writer_reads_back(rows in proptest::collection::vec((1u8..=223, any::<u8>(), cell()), 1..20)) {
            let mut w = ::csv::Writer::from_writer(Vec::new());
            w.write_record(["indicator", "description"]).unwrap();
            let mut want = Vec::new();
            for (a, b, d) in &rows {
                let v = format!("{a}.{b}.7.9");
                w.write_record([v.as_str(), d.as_str()]).unwrap();
                want.push((v, d.clone()));
            }
            let bytes = w.into_inner().unwrap();
            let (reports, st, _) = import("csv", &bytes, Options::default());
            prop_assert_eq!(st.rejected, 0, "{:?}", st.problems);
            let got: Vec<(String, String)> =
                reports.iter().map(|r| (r.indicator.value.clone(), r.description.clone().unwrap_or_default())).collect();
            // Cells are trimmed (a description of only spaces is none).
            let want: Vec<(String, String)> = want.into_iter().map(|(v, d)| (v, d.trim().to_owned())).collect();
            prop_assert_eq!(got, want);
        }

        /// No input stops or crashes any format: arbitrary bytes (biased towards the characters
        /// the formats care about) are read to the end without an error.
        #[test]
        fn every_format_reads_any_bytes_to_the_end(
            bytes in proptest::collection::vec(prop_oneof![
                Just(b'"'), Just(b','), Just(b'\n'), Just(b'#'), Just(b';'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'),
                Just(b'\''), Just(b'\\'), Just(b':'), Just(b'1'), Just(b'.'), Just(b'/'), Just(0xEF), Just(0xBB), Just(0xBF), any::<u8>(),
            ], 0..400)
        ) {
            for f in FORMATS {
                let mut rdr = FeedReader::new(ReadOptions::default());
                let res = rdr.read(*f, "fuzz", &bytes[..], &mut |_| {});
                prop_assert!(res.is_ok(), "{}: {:?}", f.name(), res);
                let st = rdr.stats();
                prop_assert_eq!(st.accepted + st.rejected, st.read, "{}", f.name());
            }
        }

        /// STIX patterns: any text gives comparisons or a reason, never a panic.
        #[test]
        fn stix_patterns_never_panic(p in "[\\[\\]()'\\\\a-z:=. ORAND0-9-]{0,60}") {
            let _ = stix::comparisons(&p);
        }

        /// A plain list: every line is a comment, blank, accepted or rejected, never lost; and
        /// reading the normalised values again changes nothing.
        #[test]
        fn text_lines_are_all_accounted_for_and_normalising_twice_changes_nothing(
            lines in proptest::collection::vec(prop_oneof![
                (any::<u8>(), any::<u8>()).prop_map(|(a, b)| format!("{}.{a}.{b}.1", 1 + a % 220)),
                (any::<u8>(), 0u8..=40).prop_map(|(a, p)| format!("{}.{a}.0.0/{p}", 1 + a % 220)),
                Just("# comment".to_string()),
                Just(String::new()),
                Just("HXXP://evil[.]example[.]org/a b".to_string()),
                Just("::ffff:203.0.113.4".to_string()),
                "[a-z!]{1,8}",
            ], 1..40)
        ) {
            let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let (reports, st, _) = import("text", input.as_bytes(), Options::default());
            prop_assert_eq!(st.comment_lines + st.blank_lines + st.read, lines.len() as u64);
            prop_assert_eq!(st.accepted + st.rejected, st.read);
            prop_assert_eq!(st.accepted, reports.len() as u64);
            let again: String = reports.iter().map(|r| format!("{}\n", r.indicator.value)).collect();
            let (second, st2, _) = import("text", again.as_bytes(), Options::default());
            prop_assert_eq!(st2.rejected, 0);
            prop_assert_eq!(values(&second), values(&reports));
        }
    }
}

#[test]
fn csv_unterminated_quote_costs_one_row_not_the_rest_of_the_file() {
    // The tester's file: 200 lines, a stray quote on line 4.
    let mut input = String::from("indicator,description\n");
    for i in 2..=200u32 {
        if i == 4 {
            input.push_str("74.9.9.9,\"unterminated description\n");
        } else {
            input.push_str(&format!("74.9.{}.{},row {i}\n", i / 250, i % 250));
        }
    }
    let (reports, st, _) = import("csv", input.as_bytes(), Options::default());
    assert_eq!(problems(&st), [(4, "unterminated_quote")]);
    assert_eq!((reports.len(), st.rejected), (198, 1));
    assert_eq!(reports[2].description.as_deref(), Some("row 5"), "line 5 is a row of its own");
    assert_eq!(reports.last().unwrap().indicator.value, "74.9.0.200");

    // A quoted field may span lines; one open for more than 100 lines is unterminated, and the
    // rows inside it are read again.
    let (reports, st, _) = import("csv", b"ip,desc\n198.51.100.1,\"two\nlines\"\n198.51.100.2,ok\n", Options::default());
    assert_eq!(reports[0].description.as_deref(), Some("two\nlines"));
    assert_eq!((reports.len(), st.rejected), (2, 0));
    let mut long = String::from("ip,desc\n198.51.100.1,\"open\n");
    for _ in 0..150 {
        long.push_str("198.51.100.3,x\n");
    }
    long.push_str("198.51.100.4,\"closes late\"\"\"\n");
    let (reports, st, _) = import("csv", long.as_bytes(), Options::default());
    assert_eq!(problems(&st), [(2, "unterminated_quote")]);
    assert_eq!(reports.len(), 151);
    assert_eq!(reports[150].description.as_deref(), Some("closes late\""));
}

#[test]
fn text_with_cr_only_line_endings_keeps_every_value() {
    let (reports, st, _) = import("text", b"68.2.2.1\r68.2.2.2\r68.2.2.3\r", Options::default());
    assert_eq!(values(&reports), [(IType::Ipv4, "68.2.2.1"), (IType::Ipv4, "68.2.2.2"), (IType::Ipv4, "68.2.2.3")]);
    assert_eq!(st.rejected, 0);
}

#[test]
fn future_times_are_refused_per_record_and_long_descriptions_cut() {
    let long = "d".repeat(apiary_core::limits::MAX_DESCRIPTION + 10);
    let input = format!(
        "indicator,first_seen,description,protocol\n198.51.100.1,9999-01-01,x,tcp\n198.51.100.2,2024-01-01,{long},tcp\n198.51.100.3,,y,{}\n",
        "p".repeat(200)
    );
    let (reports, st, _) = import("csv", input.as_bytes(), Options::default());
    assert_eq!(problems(&st), [(2, "in_future"), (4, "field_too_long")]);
    assert_eq!(values(&reports), [(IType::Ipv4, "198.51.100.2")]);
    assert_eq!(reports[0].description.as_ref().unwrap().chars().count(), apiary_core::limits::MAX_DESCRIPTION);
    assert_eq!(st.descriptions_truncated, 1);
}

#[test]
fn stix_and_misp_entries_that_are_not_objects_are_counted_with_their_place() {
    let stix = br#"{"type":"bundle","objects":[5,"x",null,{"type":"indicator","pattern":"[ipv4-addr:value = '198.51.100.7']","pattern_type":"stix"}]}"#;
    let (reports, st, _) = import("stix", stix, Options::default());
    assert_eq!(reports.len(), 1);
    assert_eq!(problems(&st), [(0, "not_an_object"), (0, "not_an_object"), (0, "not_an_object")]);
    assert!(st.problems[1].message.contains("objects[1]"), "{:?}", st.problems);
    let misp = br#"{"Event":{"info":"x","Attribute":[5,{"type":"ip-dst","value":"198.51.100.8"},{"type":"ip-dst"}]}}"#;
    let (reports, st, _) = import("misp", misp, Options::default());
    assert_eq!(reports.len(), 1);
    assert_eq!(problems(&st), [(0, "not_an_object"), (0, "missing_field")]);
    assert!(st.problems[0].message.contains("Attribute[0]"), "{:?}", st.problems);
    assert!(st.problems[1].message.contains("Attribute[2]"), "{:?}", st.problems);
}
