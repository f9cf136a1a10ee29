//! Tailing (partial lines, rotation, truncation, restart) and spool bounds.

use super::*;
use std::fs::OpenOptions;
use std::io::Write;

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Poll until the end; the lines handed out (as text) and the last position.
fn drain(t: &mut Tailer) -> (Vec<String>, Option<Position>) {
    let mut lines = Vec::new();
    let mut last = None;
    loop {
        let p = t
            .poll(3, &mut |l: &Line, pos: &Position| {
                lines.push(String::from_utf8_lossy(l.bytes).into_owned());
                last = Some(pos.clone());
            })
            .unwrap();
        if p.at_end {
            return (lines, last);
        }
    }
}

#[test]
fn a_half_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cowrie.json");
    append(&log, "a1\na2\r\na3-ha");
    let mut t = Tailer::new(&log);
    assert_eq!(drain(&mut t).0, ["a1", "a2"], "the fragment is not handed out, and \\r\\n ends a line");
    assert_eq!(t.position().unwrap().offset, 7);
    append(&log, "lf\n");
    let (lines, pos) = drain(&mut t);
    assert_eq!(lines, ["a3-half"]);
    assert_eq!((pos.unwrap().line, t.position().unwrap().offset), (3, 15));
    assert_eq!(drain(&mut t).0, Vec::<String>::new());
}

#[test]
fn a_bom_at_the_start_of_the_log_is_not_part_of_the_first_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cowrie.json");
    append(&log, "\u{FEFF}{\"eventid\":\"a\"}\n{\"eventid\":\"b\"}\n");
    let mut t = Tailer::new(&log);
    assert_eq!(drain(&mut t).0, ["{\"eventid\":\"a\"}", "{\"eventid\":\"b\"}"]);
}

#[test]
fn a_missing_file_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cowrie.json");
    let mut t = Tailer::new(&log);
    assert!(drain(&mut t).0.is_empty());
    append(&log, "x\n");
    assert_eq!(drain(&mut t).0, ["x"]);
}

#[test]
fn rotation_by_rename_finishes_the_old_file_then_follows_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cowrie.json");
    append(&log, "old1\nold2\n");
    let mut t = Tailer::new(&log);
    assert_eq!(drain(&mut t).0, ["old1", "old2"]);
    // The writer adds a line, then the log is rotated and a new file started.
    append(&log, "old3\n");
    std::fs::rename(&log, dir.path().join("cowrie.json.2026-12-03")).unwrap();
    append(&log, "new1\nnew2\n");
    let (lines, pos) = drain(&mut t);
    assert_eq!(lines, ["old3", "new1", "new2"], "nothing of the old file is lost");
    let pos = pos.unwrap();
    assert_eq!((pos.line, pos.offset), (2, 10), "positions are per file");
    assert_eq!(t.stats().rotations, 1);
}

#[test]
fn copytruncate_is_followed_from_the_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cowrie.json");
    append(&log, "first-a\nfirst-b\n");
    let mut t = Tailer::new(&log);
    assert_eq!(drain(&mut t).0.len(), 2);
    // copytruncate: copy away, truncate in place, the writer goes on at the start.
    std::fs::copy(&log, dir.path().join("cowrie.json.1")).unwrap();
    OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
    append(&log, "second-a\n");
    assert_eq!(drain(&mut t).0, ["second-a"]);
    assert_eq!(t.stats().truncations, 1);
    // Truncated and written past the old size between two polls: the first line changed.
    let before = t.position().unwrap().clone();
    OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
    append(&log, "third-a-with-a-much-longer-first-line\nthird-b\n");
    assert_eq!(drain(&mut t).0, ["third-a-with-a-much-longer-first-line", "third-b"]);
    assert_ne!(t.position().unwrap().fingerprint, before.fingerprint);
    assert_eq!(t.stats().truncations, 2);
}

#[test]
fn resume_continues_where_it_stopped_even_after_a_rotation_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cowrie.json");
    append(&log, "l1\nl2\n");
    let mut t = Tailer::new(&log);
    let (_, saved) = drain(&mut t);
    let saved = saved.unwrap();

    // Same file, grown.
    append(&log, "l3\n");
    let mut t = Tailer::resume(&log, &saved).unwrap();
    assert_eq!(drain(&mut t).0, ["l3"]);

    // Rotated (and the new file written) while the shipper was stopped: the rest of the old
    // file first, found by its first line, then the new one.
    std::fs::rename(&log, dir.path().join("cowrie.json.1")).unwrap();
    append(&log, "n1\n");
    let mut t = Tailer::resume(&log, &saved).unwrap();
    assert_eq!(drain(&mut t).0, ["l3", "n1"]);

    // The old file is gone altogether: the current file from its start.
    std::fs::remove_file(dir.path().join("cowrie.json.1")).unwrap();
    let mut t = Tailer::resume(&log, &saved).unwrap();
    assert_eq!(drain(&mut t).0, ["n1"]);
}

#[test]
fn an_over_long_line_is_cut_and_the_next_ones_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cowrie.json");
    append(&log, &format!("{}\nafter\n", "x".repeat(tail::MAX_LINE + 10)));
    let mut t = Tailer::new(&log);
    let mut got = Vec::new();
    loop {
        let p = t.poll(10, &mut |l: &Line, _: &Position| got.push((l.bytes.len(), l.cut, l.number))).unwrap();
        if p.at_end {
            break;
        }
    }
    assert_eq!(got, [(tail::MAX_LINE, true, 1), (5, false, 2)]);
}

fn pos(offset: u64, line: u64) -> Position {
    Position { file: "cowrie.json".into(), dev: 1, ino: 2, fingerprint: "fp".into(), offset, line }
}

#[test]
fn the_spool_keeps_events_until_acked_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20, true).unwrap();
    for i in 1..=5u64 {
        s.push(&Source::from_position(&pos(i * 10, i)), format!("{{\"n\":{i}}}").as_bytes()).unwrap();
    }
    s.commit(&pos(50, 5)).unwrap();
    let b = s.next_batch(2, 1 << 20).unwrap();
    assert_eq!(b.body, b"{\"n\":1}\n{\"n\":2}");
    s.ack(&b).unwrap();
    assert_eq!(s.acked().position.as_ref().map(|p| (p.offset, p.line)), Some((20, 2)), "acked source position");
    assert_eq!(s.unacked_records(), 3);
    drop(s);

    // After a restart: reading resumes after the spooled lines; sending after the acked ones.
    let mut s = Spool::open(dir.path(), 1 << 20, true).unwrap();
    assert_eq!(s.read_position().map(|p| p.line), Some(5));
    assert_eq!(s.unacked_records(), 3);
    s.push(&Source::from_position(&pos(60, 6)), b"{\"n\":6}").unwrap();
    s.commit(&pos(60, 6)).unwrap();
    let b = s.next_batch(10, 1 << 20).unwrap();
    assert_eq!(String::from_utf8(b.body.clone()).unwrap(), "{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n{\"n\":6}", "across segments, in order");
    s.ack(&b).unwrap();
    assert!(s.is_empty());
    assert!(s.next_batch(10, 1 << 20).unwrap().is_empty());
    let segments = std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "spool")).count();
    assert!(segments <= 1, "finished segments are removed ({segments} left)");
}

#[test]
fn the_spool_is_bounded_and_batches_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1000, false).unwrap();
    let event = vec![b'x'; 90];
    let mut n = 0;
    while !s.is_full() {
        n += 1;
        s.push(&Source::from_position(&pos(n * 100, n)), &event).unwrap();
    }
    assert!((9..=11).contains(&n), "full after about 1000 bytes, at {n} events");
    s.commit(&pos(n * 100, n)).unwrap();
    let b = s.next_batch(100, 300).unwrap();
    assert_eq!(b.len(), 3, "at most 300 bytes of body");
    s.ack(&b).unwrap();
    assert!(!s.is_full(), "acknowledging makes room");
    // One event larger than the byte bound still goes, alone.
    let b = s.next_batch(100, 10).unwrap();
    assert_eq!(b.len(), 1);
}

#[test]
fn a_half_record_left_by_a_crash_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20, false).unwrap();
    s.push(&Source::from_position(&pos(10, 1)), b"{\"n\":1}").unwrap();
    s.commit(&pos(10, 1)).unwrap();
    drop(s);
    let seg = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "spool")).unwrap();
    append(&seg, "1:2:fp:20:2\t{\"n\":");
    let mut s = Spool::open(dir.path(), 1 << 20, false).unwrap();
    assert_eq!(s.unacked_records(), 1);
    let b = s.next_batch(10, 1 << 20).unwrap();
    assert_eq!(b.body, b"{\"n\":1}");
}

#[test]
fn lines_become_keyed_events_without_the_dropped_fields() {
    let e = Encoder::new("pot1", "cowrie", &[]);
    let line = br#"{"eventid":"cowrie.login.failed","password":"123456","session":"abc"}"#;
    let Encoded::Event { wire, lossy } = e.encode(line, "fp", 42) else { panic!() };
    assert!(!lossy);
    let v: serde_json::Value = serde_json::from_slice(&wire).unwrap();
    assert_eq!(v["key"], event_key("pot1", "fp", 42));
    assert_eq!((v["sensor"].as_str(), v["kind"].as_str()), (Some("pot1"), Some("cowrie")));
    assert_eq!(v["event"]["password"], "123456");
    assert_ne!(event_key("pot1", "fp", 42), event_key("pot1", "fp", 43));
    assert_ne!(event_key("pot1", "fp", 42), event_key("pot2", "fp", 42));

    let e = Encoder::new("pot1", "cowrie", &["password".into(), "input".into()]);
    let Encoded::Event { wire, .. } = e.encode(line, "fp", 42) else { panic!() };
    let v: serde_json::Value = serde_json::from_slice(&wire).unwrap();
    assert!(v["event"].get("password").is_none(), "dropped before it leaves: {v}");
    assert_eq!(v["event"]["session"], "abc");
    // Numbers are shipped as logged, dropped fields or not.
    let Encoded::Event { wire, .. } = e.encode(br#"{"duration":0.9280888645586028,"password":"x"}"#, "fp", 0) else { panic!() };
    assert!(String::from_utf8(wire).unwrap().contains(r#""event":{"duration":0.9280888645586028}"#));

    assert!(matches!(e.encode(b"not json", "fp", 0), Encoded::NotJson(_)));
    assert!(matches!(e.encode(b"[1,2]", "fp", 0), Encoded::NotJson(_)));
    let Encoded::Event { lossy, wire } = Encoder::new("p", "cowrie", &[]).encode(b"{\"input\":\"a\xff\"}", "fp", 0) else { panic!() };
    assert!(lossy);
    assert!(serde_json::from_slice::<serde_json::Value>(&wire).is_ok());
}
