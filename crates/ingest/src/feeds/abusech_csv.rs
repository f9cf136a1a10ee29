//! `abusech-csv`: abuse.ch's CSV downloads: Feodo Tracker (`first_seen_utc, dst_ip, dst_port,
//! c2_status, last_online, malware`), URLhaus (`id, dateadded, url, url_status, last_online,
//! threat, tags, urlhaus_link, reporter`), ThreatFox (`ioc_value`, `ioc_type`, ...),
//! MalwareBazaar (`sha256_hash`, ...) and SSLBL (`DstIP`, `SHA1`).
//!
//! Each file opens with a `#` comment block; the header is either the first row after it
//! (quoted, in Feodo's case) or the block's last comment line (`# id,dateadded,url,...`). Every
//! field is quoted; URLhaus's `tags` cell holds commas; ThreatFox separates fields with `", "`,
//! which is closed up to `","` before the table is read. The malware family, the threat and the
//! tags become tags; `dst_port` the port; first and last seen the times; the rest (status, links,
//! reporter, ids) is kept by column name. The `# END n entries` footer is a comment.
//!
//! The table reader is the generic [`csv`](super::csv) one; `--column` overrides the value
//! column here too.

use super::csv::{read_table, Names};
use super::{Entry, Format, Options};
use std::io::{self, BufRead};

pub struct AbuseChCsv;

static ABUSECH: Names = Names {
    value: &["url", "dst_ip", "dstip", "ip_address", "ioc_value", "ioc", "sha256_hash", "sha1"],
    hint: &["ioc_type"],
    port: &["dst_port", "dstport"],
    first_seen: &["first_seen_utc", "firstseen", "dateadded", "listingdate"],
    last_seen: &["last_online", "last_seen_utc", "lastonline"],
    description: &["listingreason"],
    tags: &["malware_printable", "malware", "signature", "threat", "threat_type", "tags"],
    protocol: &[],
    tlp: &[],
    header_in_comments: true,
    spaced_separators: true,
};

impl Format for AbuseChCsv {
    fn name(&self) -> &'static str {
        "abusech-csv"
    }

    fn about(&self) -> &'static str {
        "abuse.ch CSV (Feodo Tracker, URLhaus, ThreatFox, MalwareBazaar, SSLBL)"
    }

    fn read(&self, input: &mut dyn BufRead, opts: &Options, out: &mut dyn FnMut(Entry)) -> io::Result<()> {
        read_table(input, opts, &ABUSECH, out)
    }
}
