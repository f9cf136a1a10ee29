//! The hub's network enrichment: the operator's IP-to-ASN tables (`apiary serve --asn-db
//! FILE`, docs/enrichment.md) read from disk into [`apiary_core::enrich`] tables, swapped in
//! whole on reload (SIGHUP), and applied where records leave the hub: the native views, the
//! CSIRTG `asn`/`asn_desc`/`cc` fields, streamed events, and the stream filter `asn=`.
//!
//! Enrichment happens on the way out, not on intake, so a newer table applies to everything
//! already stored and nothing is written per sighting.
//!
//! Files: an ip2asn TSV (iptoasn.com; gzip-compressed or plain). A MaxMind database is
//! recognised and refused with a clear message. Several files are layered; for each field the
//! first file that knows it wins (give the ASN table, then a country table).

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use apiary_bus::Event;
use apiary_core::enrich::{parse_ip2asn_line, AsnTable, AsnTableBuilder, Enrichment, Network};
use apiary_core::IType;
use serde_json::Value;

/// Lines with errors reported by name; the rest are only counted.
const REPORTED_ERRORS: usize = 20;

/// What loading one file found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadReport {
    pub path: PathBuf,
    /// `ip2asn` or `mmdb`.
    pub format: &'static str,
    pub ranges: usize,
    pub autonomous_systems: usize,
    /// Lines (TSV) that could not be read; the others were kept.
    pub bad_lines: usize,
    /// The first few bad lines: (line number, reason).
    pub errors: Vec<(usize, String)>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ranges of {} autonomous systems ({})",
            self.path.display(),
            self.ranges,
            self.autonomous_systems,
            self.format
        )?;
        if self.bad_lines > 0 {
            write!(f, "; {} bad lines skipped", self.bad_lines)?;
            for (n, e) in &self.errors {
                write!(f, "\n  line {n}: {e}")?;
            }
        }
        Ok(())
    }
}

/// The files, decompressed when they start with the gzip magic.
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: not a readable gzip file: {e}", path.display()))?;
        return Ok(out);
    }
    Ok(raw)
}

/// The metadata marker every MaxMind database carries near its end.
const MMDB_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

fn is_mmdb(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(128 * 1024)..];
    tail.windows(MMDB_MARKER.len()).any(|w| w == MMDB_MARKER)
}

/// An ip2asn TSV: every good line kept, bad ones counted with their line numbers.
pub fn load_ip2asn(path: &Path, bytes: &[u8]) -> (AsnTable, LoadReport) {
    let mut b = AsnTableBuilder::new();
    let mut report = LoadReport { path: path.to_path_buf(), format: "ip2asn", ..LoadReport::default() };
    for (i, line) in bytes.split(|&c| c == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        let result = parse_ip2asn_line(&line).and_then(|r| match r {
            Some((start, end, network)) => b.add(start, end, network),
            None => Ok(()),
        });
        if let Err(e) = result {
            report.bad_lines += 1;
            if report.errors.len() < REPORTED_ERRORS {
                report.errors.push((i + 1, e));
            }
        }
    }
    let table = b.build();
    report.ranges = table.len();
    report.autonomous_systems = table.as_count();
    (table, report)
}

/// Load one file of either kind.
pub fn load_file(path: &Path) -> Result<(AsnTable, LoadReport), String> {
    let bytes = read_file(path)?;
    if is_mmdb(&bytes) {
        return Err(format!(
            "{}: a MaxMind database; this hub reads ip2asn TSV tables (iptoasn.com, plain or gzip) so far",
            path.display()
        ));
    }
    let (table, report) = load_ip2asn(path, &bytes);
    if table.is_empty() && report.bad_lines > 0 {
        let first = report.errors.first().map(|(n, e)| format!(" (line {n}: {e})")).unwrap_or_default();
        return Err(format!("{}: not an ip2asn TSV or MaxMind database{first}", path.display()));
    }
    Ok((table, report))
}

/// Load every file, in order (first wins per field).
pub fn load_files(paths: &[PathBuf]) -> Result<(Enrichment, Vec<LoadReport>), String> {
    let mut tables = Vec::new();
    let mut reports = Vec::new();
    for p in paths {
        let (t, r) = load_file(p)?;
        tables.push(Arc::new(t));
        reports.push(r);
    }
    Ok((Enrichment::new(tables), reports))
}

/// The hub's current tables and the files they came from; cheap to read from every request.
#[derive(Default)]
pub struct AsnDb {
    paths: Vec<PathBuf>,
    current: RwLock<Arc<Enrichment>>,
}

impl std::fmt::Debug for AsnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsnDb").field("paths", &self.paths).finish()
    }
}

impl AsnDb {
    /// No tables: nothing is enriched and the `asn` filter is refused.
    pub fn none() -> Arc<AsnDb> {
        Arc::new(AsnDb::default())
    }

    /// Tables built in memory (tests, benchmarks).
    pub fn from_enrichment(e: Enrichment) -> Arc<AsnDb> {
        Arc::new(AsnDb { paths: Vec::new(), current: RwLock::new(Arc::new(e)) })
    }

    /// Load `paths`; an unreadable file is an error (the hub should not start half-enriched).
    pub fn open(paths: Vec<PathBuf>) -> Result<(Arc<AsnDb>, Vec<LoadReport>), String> {
        let (e, reports) = load_files(&paths)?;
        Ok((Arc::new(AsnDb { paths, current: RwLock::new(Arc::new(e)) }), reports))
    }

    /// Read the files again and swap the new tables in; on any error the old ones stay.
    pub fn reload(&self) -> Result<Vec<LoadReport>, String> {
        let (e, reports) = load_files(&self.paths)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(e);
        Ok(reports)
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The tables in use now.
    pub fn get(&self) -> Arc<Enrichment> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether any table is loaded (the `asn` filter needs one).
    pub fn is_loaded(&self) -> bool {
        !self.get().is_empty()
    }
}

/// The network fields of the CSIRTG views: `asn` (number or null), `asn_desc` and `cc`
/// (strings, empty when unknown — the CSIRTG clients expect strings).
pub fn fields(n: Option<&Network>) -> [(&'static str, Value); 3] {
    [
        ("asn", n.and_then(|n| n.asn).map(Value::from).unwrap_or(Value::Null)),
        ("asn_desc", Value::from(n.and_then(|n| n.as_name.as_deref()).unwrap_or(""))),
        ("cc", Value::from(n.and_then(|n| n.country.as_deref()).unwrap_or(""))),
    ]
}

/// The network fields of the native views and streams: `asn`, `asn_desc` and `cc`, each null
/// when unknown, as every absent value in the native API (docs/enrichment.md).
pub fn native_fields(n: Option<&Network>) -> [(&'static str, Value); 3] {
    [
        ("asn", n.and_then(|n| n.asn).map(Value::from).unwrap_or(Value::Null)),
        ("asn_desc", n.and_then(|n| n.as_name.as_deref()).map(Value::from).unwrap_or(Value::Null)),
        ("cc", n.and_then(|n| n.country.as_deref()).map(Value::from).unwrap_or(Value::Null)),
    ]
}

/// Add the network fields of `(itype, value)` to a native JSON object view.
pub fn annotate(view: &mut Value, e: &Enrichment, itype: IType, value: &str) {
    let n = e.lookup_indicator(itype, value);
    if let Value::Object(map) = view {
        for (k, v) in native_fields(n.as_ref()) {
            map.insert(k.to_string(), v);
        }
    }
}

/// A streamed event's native JSON with its network fields. Without tables, or for a value
/// with no address, it is the bus's shared JSON unchanged (no copy).
pub fn event_json<'a>(e: &Enrichment, ev: &'a Event) -> Cow<'a, str> {
    let s = &ev.sighting;
    let Some(n) = e.lookup_indicator(s.itype, &s.indicator) else {
        return Cow::Borrowed(ev.json());
    };
    let base = ev.json();
    let Some(body) = base.strip_suffix('}') else {
        return Cow::Borrowed(base);
    };
    let extra = Value::Object(native_fields(Some(&n)).into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    let extra = extra.to_string();
    let sep = if body.ends_with('{') { "" } else { "," };
    Cow::Owned(format!("{body}{sep}{}}}", &extra[1..extra.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_files_keep_good_lines_and_count_bad_ones_with_line_numbers() {
        let text = b"1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\nnot a line\n1.0.4.0\t1.0.7.255\t38803\tAU\tGTELECOM\n\xff\xfe\t1\n";
        let (t, r) = load_ip2asn(Path::new("t.tsv"), text);
        assert_eq!((t.len(), r.bad_lines), (2, 2));
        assert_eq!(r.errors.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 4]);
        assert!(r.to_string().contains("line 2: missing column"), "{r}");
    }

    #[test]
    fn gzip_files_are_read_and_garbage_is_refused() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("ip2asn-v4.tsv.gz");
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(b"198.51.100.0\t198.51.100.255\t64496\tNL\tDOC-NET\n").unwrap();
        enc.finish().unwrap();
        let (db, reports) = AsnDb::open(vec![gz]).unwrap();
        assert_eq!(reports[0].ranges, 1);
        let n = db.get().lookup("198.51.100.9".parse().unwrap()).unwrap();
        assert_eq!((n.asn, n.country.as_deref()), (Some(64496), Some("NL")));
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "hello\nworld\n").unwrap();
        assert!(AsnDb::open(vec![junk]).unwrap_err().contains("not an ip2asn TSV"));
    }
}
