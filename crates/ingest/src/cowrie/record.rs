//! From an assembled [`Session`] to the [`SessionRecord`] the hub stores and correlates
//! (`apiary_core::sessions`). Lists are cut at [`MAX_LIST`] items and text at [`MAX_FIELD`]
//! bytes, the limits the hub's API accepts, so an offline import and one through a hub store
//! the same record.

use super::session::{CommandStatus, Session};
use apiary_core::sessions::{
    SessionCredential, SessionRecord, Transfer, TunnelTarget, MAX_FIELD, MAX_LIST,
};
use apiary_core::ParseOptions;

/// The record of `s`. `attacker` is the attacker's address as the core normalised it (the
/// importer has it from the session's attacker report); see [`record_parsing`] otherwise.
pub fn record(s: &Session, attacker: Option<String>) -> SessionRecord {
    let cut = |v: &str| -> String {
        if v.len() <= MAX_FIELD {
            return v.to_owned();
        }
        let mut end = MAX_FIELD;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        v[..end].to_owned()
    };
    let opt = |v: &Option<String>| v.as_deref().map(cut);
    // Commands as typed; logs of old Cowries (and hpfeeds summaries) may list only the
    // commands found or not found.
    let typed = s.commands.iter().any(|c| c.status == CommandStatus::Input);
    let commands = s
        .commands
        .iter()
        .filter(|c| !typed || c.status == CommandStatus::Input)
        .take(MAX_LIST)
        .map(|c| cut(&c.input))
        .collect();
    SessionRecord {
        sensor: s.sensor.clone(),
        session: s.session.clone(),
        attacker,
        attacker_port: s.src_port,
        honeypot_ip: opt(&s.dst_ip),
        honeypot_port: s.dst_port,
        protocol: opt(&s.protocol),
        start: s.start,
        end: s.end,
        duration: s.duration_secs().filter(|d| d.is_finite() && *d >= 0.0),
        client_version: opt(&s.client_version),
        hassh: opt(&s.hassh),
        credentials: s
            .credentials
            .iter()
            .take(MAX_LIST)
            .map(|c| SessionCredential {
                username: opt(&c.username),
                password: opt(&c.password),
                fingerprint: opt(&c.fingerprint),
                success: c.success,
            })
            .collect(),
        login_success: s.logged_in,
        commands,
        downloads: s
            .downloads
            .iter()
            .take(MAX_LIST)
            .map(|d| Transfer {
                url: opt(&d.url),
                sha256: sha256(&d.shasum),
            })
            .collect(),
        uploads: s
            .uploads
            .iter()
            .take(MAX_LIST)
            .map(|u| Transfer {
                url: opt(&u.filename),
                sha256: sha256(&u.shasum),
            })
            .collect(),
        tunnels: s
            .tunnels
            .iter()
            .take(MAX_LIST)
            .map(|t| TunnelTarget {
                host: cut(&t.host),
                port: t.port,
            })
            .collect(),
        ttylog_sha256: s.ttylog.as_ref().and_then(|t| sha256(&t.shasum)),
        depth: s.depth().as_str().to_owned(),
        events: s.events,
        closed: s.closed,
    }
}

/// [`record`], normalising the attacker's address itself (`None` when the log's `src_ip` is
/// not an address).
pub fn record_parsing(s: &Session, opts: &ParseOptions) -> SessionRecord {
    let attacker = s
        .src_ip
        .as_deref()
        .and_then(|ip| apiary_core::sessions::attacker_address(ip, opts).ok());
    record(s, attacker)
}

/// A SHA-256 as lowercase hex, or nothing (Cowrie logs other digests in some versions).
fn sha256(v: &Option<String>) -> Option<String> {
    let h = v.as_deref()?.trim().to_ascii_lowercase();
    (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cowrie::{Assembler, ReadOptions};

    #[test]
    fn a_session_becomes_a_record() {
        let log = concat!(
            r#"{"eventid":"cowrie.session.connect","src_ip":"192.0.2.7","src_port":4444,"dst_ip":"10.0.0.5","dst_port":2222,"session":"s1","protocol":"ssh","sensor":"pot","timestamp":"2024-05-01T10:00:00Z"}"#,
            "\n",
            r#"{"eventid":"cowrie.client.kex","hassh":"abc","session":"s1","sensor":"pot","timestamp":"2024-05-01T10:00:01Z"}"#,
            "\n",
            r#"{"eventid":"cowrie.login.success","username":"root","password":"x","session":"s1","sensor":"pot","timestamp":"2024-05-01T10:00:02Z"}"#,
            "\n",
            r#"{"eventid":"cowrie.command.input","input":"uname -a","session":"s1","sensor":"pot","timestamp":"2024-05-01T10:00:03Z"}"#,
            "\n",
            r#"{"eventid":"cowrie.command.failed","input":"uname -a","session":"s1","sensor":"pot","timestamp":"2024-05-01T10:00:03Z"}"#,
            "\n",
            r#"{"eventid":"cowrie.session.file_download","url":"http://198.51.100.1/x","shasum":"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08","session":"s1","sensor":"pot","timestamp":"2024-05-01T10:00:04Z"}"#,
            "\n",
            r#"{"eventid":"cowrie.session.closed","duration":5.5,"session":"s1","sensor":"pot","timestamp":"2024-05-01T10:00:05Z"}"#,
            "\n",
        );
        let mut asm = Assembler::new(ReadOptions::default());
        let mut got = Vec::new();
        asm.read(log.as_bytes(), "t", "t", &mut |_| {}, &mut |s| got.push(s))
            .unwrap();
        let r = record_parsing(&got[0], &ParseOptions::default());
        assert_eq!(r.attacker.as_deref(), Some("192.0.2.7"));
        assert_eq!((r.attacker_port, r.honeypot_port), (Some(4444), Some(2222)));
        assert_eq!(
            r.commands,
            ["uname -a"],
            "the typed command once, not its failed echo"
        );
        assert_eq!(r.depth, "payload");
        assert_eq!(
            r.downloads[0].sha256.as_deref().unwrap(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(
            (r.events, r.closed, r.login_success, r.duration),
            (7, true, true, Some(5.5))
        );
        let mut again = r.clone();
        again
            .check(&ParseOptions::default())
            .expect("a reader's record passes the hub's checks");
        assert_eq!(again, r);
    }
}
