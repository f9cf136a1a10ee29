//! `apiary parse`: show how values are understood (type, stored form, special-use, allowlists).

use anyhow::Context;
use apiary_core::allowlist::WarningList;
use apiary_core::{parse, Allowlist, Derived, IType, Indicator, ListUse, Listed, ParseOptions, Rejection};
use clap::Args;
use serde::Serialize;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `apiary parse`. The one-line summary comes from the subcommand list in
/// `cmd/mod.rs`; `--help` adds `LONG_HELP` after the options.
#[derive(Args, Debug)]
#[command(after_help = EXAMPLES, after_long_help = LONG_HELP)]
pub struct ParseArgs {
    /// Print one JSON object per line: {"input","itype","value","port","derived","reserved","listed","flags","error"}.
    #[arg(long)]
    pub json: bool,

    /// Load MISP warninglists from DIR (repeatable).
    #[arg(long, value_name = "DIR")]
    pub allowlist: Vec<PathBuf>,

    /// Check every value against this type (ipv4, ipv6, fqdn, url, email, md5, sha1, sha256, sha512, asn).
    #[arg(long = "type", short = 't', value_name = "TYPE", value_parser = parse_itype)]
    pub itype: Option<IType>,

    /// Leave out the built-in allowlists.
    #[arg(long)]
    pub no_builtin: bool,

    /// Values to parse. `-` reads values from standard input, one per line (blank lines skipped).
    #[arg(required = true, value_name = "VALUE")]
    pub values: Vec<String>,
}

const LONG_HELP: &str = "\
What it prints: one line per value: its type and stored (normalised) form, the port if one was given,
indicators derived from it (a URL's host, an e-mail's domain), its special-use class (private,
loopback, documentation, ...), the allowlists it is on, and what normalising did (flags). A
rejected value gets a line with the reason. Codes are listed in docs/codes.md.

Allowlists: the built-in lists (special-use ranges, big public resolvers, special-use names,
empty-file hashes) plus the MISP warninglists under each --allowlist DIR: DIR/<name>/list.json,
DIR/<name>.json, or DIR/list.json itself. A list is used to `exclude` or to `hold` according to
its optional \"use\" field, else by its name: rfc*, bogon*, multicast, ipv6-linklocal,
public-dns*, sinkholes, tlds, empty-hashes and other special-use lists exclude; cloud, CDN,
top-site, URL-shortener and unknown lists hold (see docs/indicators.md).

With --json, one object per line:
  {\"input\":..,\"itype\":..,\"value\":..,\"port\":n|null,\"derived\":[{\"itype\":..,\"value\":..}],
   \"reserved\":code|null,\"listed\":[{\"list\":..,\"use\":\"exclude\"|\"hold\"}],\"flags\":[code,..],
   \"error\":{\"code\":..,\"message\":..}|null}

Exit status: 0 when every value was accepted, 1 when any was rejected (each still gets its
line), 2 on a usage or allowlist error.

Examples:
  apiary parse 'hxxps://login.example[.]com/verify' 198.051.100.007
  apiary parse --json --allowlist ../shared/data/warninglists 192.168.31.210:80
  cut -d, -f1 feed.csv | apiary parse --json -";

const EXAMPLES: &str = "\
Examples:
  apiary parse 'hxxps://login.example[.]com/verify' 198.051.100.007
  apiary parse --json --allowlist ../shared/data/warninglists 192.168.31.210:80
  cut -d, -f1 feed.csv | apiary parse --json -";

fn parse_itype(s: &str) -> Result<IType, String> {
    IType::from_name(s).ok_or_else(|| format!("unknown type `{s}`"))
}

/// One output line of `--json`. The field order is part of the command-line contract.
#[derive(Serialize)]
struct Line<'a> {
    input: &'a str,
    itype: Option<IType>,
    value: Option<&'a str>,
    port: Option<u16>,
    derived: &'a [Derived],
    reserved: Option<&'static str>,
    listed: Vec<ListedOut<'a>>,
    flags: Vec<&'static str>,
    error: Option<&'a Rejection>,
}

#[derive(Serialize)]
struct ListedOut<'a> {
    list: &'a str,
    #[serde(rename = "use")]
    use_: ListUse,
}

/// Flag code added when a CIDR contains (rather than lies inside) a listed range.
const OVERLAP_FLAG: &str = "allowlist_overlap";

pub fn run(a: ParseArgs) -> anyhow::Result<ExitCode> {
    let mut lists = if a.no_builtin { Allowlist::default() } else { Allowlist::builtin() };
    for dir in &a.allowlist {
        load_dir(&mut lists, dir)?;
    }
    let opts = ParseOptions::default();
    let mut inputs: Vec<String> = Vec::new();
    let mut stdin_read = false;
    for v in a.values {
        if v == "-" {
            if !stdin_read {
                stdin_read = true;
                let stdin = std::io::stdin();
                let mut buf = Vec::new();
                let mut lock = stdin.lock();
                loop {
                    buf.clear();
                    if lock.read_until(b'\n', &mut buf).context("reading standard input")? == 0 {
                        break;
                    }
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if !line.trim().is_empty() {
                        inputs.push(line.to_string());
                    }
                }
            }
        } else {
            inputs.push(v);
        }
    }

    let results: Vec<(String, Result<Indicator, Rejection>, Vec<Listed>)> = inputs
        .into_iter()
        .map(|input| {
            let r = parse(&input, a.itype, &opts);
            let listed = r.as_ref().map(|i| lists.check(i)).unwrap_or_default();
            (input, r, listed)
        })
        .collect();
    let any_rejected = results.iter().any(|(_, r, _)| r.is_err());

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if a.json {
        for (input, r, listed) in &results {
            serde_json::to_writer(&mut out, &json_line(input, r, listed))?;
            out.write_all(b"\n")?;
        }
    } else {
        write_table(&mut out, &results)?;
    }
    out.flush()?;
    Ok(if any_rejected { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn json_line<'a>(input: &'a str, r: &'a Result<Indicator, Rejection>, listed: &'a [Listed]) -> Line<'a> {
    match r {
        Ok(ind) => Line {
            input,
            itype: Some(ind.itype),
            value: Some(&ind.value),
            port: ind.port,
            derived: &ind.derived,
            reserved: ind.reserved.map(|r| r.as_str()),
            listed: listed.iter().map(|l| ListedOut { list: &l.list, use_: l.use_ }).collect(),
            flags: flags_of(ind, listed),
            error: None,
        },
        Err(e) => Line {
            input,
            itype: None,
            value: None,
            port: None,
            derived: &[],
            reserved: None,
            listed: Vec::new(),
            flags: Vec::new(),
            error: Some(e),
        },
    }
}

fn flags_of(ind: &Indicator, listed: &[Listed]) -> Vec<&'static str> {
    let mut f: Vec<&'static str> = ind.flags.iter().map(|f| f.as_str()).collect();
    if listed.iter().any(|l| l.overlaps) {
        f.push(OVERLAP_FLAG);
    }
    f
}

/// Aligned columns: input, type (or REJECTED), value (or code), then notes.
fn write_table(out: &mut impl Write, results: &[(String, Result<Indicator, Rejection>, Vec<Listed>)]) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|(input, r, listed)| match r {
            Ok(ind) => {
                let mut notes = Vec::new();
                if let Some(p) = ind.port {
                    notes.push(format!("port={p}"));
                }
                for d in &ind.derived {
                    notes.push(format!("{}={}", d.itype, d.value));
                }
                if let Some(res) = ind.reserved {
                    notes.push(format!("reserved={res}"));
                }
                for l in listed {
                    notes.push(format!("{}={}{}", l.use_.as_str(), l.list, if l.overlaps { "(overlaps)" } else { "" }));
                }
                let flags = flags_of(ind, listed);
                if !flags.is_empty() {
                    notes.push(format!("flags={}", flags.join(",")));
                }
                [printable(input), ind.itype.to_string(), ind.value.clone(), notes.join(" ")]
            }
            Err(e) => [printable(input), "REJECTED".to_string(), e.code.as_str().to_string(), super::terminal_safe(&e.message).into_owned()],
        })
        .collect();
    let w0 = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0).min(60);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r[2].chars().count()).max().unwrap_or(0).min(70);
    for r in rows {
        let line = format!("{:<w0$}  {:<w1$}  {:<w2$}  {}", r[0], r[1], r[2], r[3]);
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Shorten very long inputs and escape control characters, so one value stays one line.
fn printable(s: &str) -> String {
    let mut o: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        o.push('…');
    }
    o
}

/// Load every warninglist under `dir` (also used by `serve` and `export`).
pub(crate) fn load_dir(lists: &mut Allowlist, dir: &Path) -> anyhow::Result<()> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let own = dir.join("list.json");
    if own.is_file() {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "list".into());
        files.push((name, own));
    } else {
        let rd = std::fs::read_dir(dir).with_context(|| format!("reading allowlist directory {}", dir.display()))?;
        for e in rd {
            let p = e?.path();
            let name = p.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if p.is_dir() && p.join("list.json").is_file() {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                files.push((n, p.join("list.json")));
            } else if p.is_file() && p.extension().is_some_and(|x| x == "json") {
                files.push((name, p));
            }
        }
        files.sort();
    }
    if files.is_empty() {
        anyhow::bail!("no warninglists (list.json) found in {}", dir.display());
    }
    for (name, path) in files {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let wl = WarningList::from_json(&text).with_context(|| format!("{}", path.display()))?;
        let use_ = wl.use_.unwrap_or_else(|| ListUse::for_list(&name));
        lists.add_warninglist(&name, &wl, &text, use_).with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(input: &str, lists: &Allowlist) -> serde_json::Value {
        let r = parse(input, None, &ParseOptions::default());
        let listed = r.as_ref().map(|i| lists.check(i)).unwrap_or_default();
        serde_json::to_value(json_line(input, &r, &listed)).unwrap()
    }

    #[test]
    fn json_line_has_the_contract_fields_in_order() {
        let lists = Allowlist::builtin();
        let v = line("192.168.31.210:80", &lists);
        assert_eq!(v["itype"], "ipv4");
        assert_eq!(v["value"], "192.168.31.210");
        assert_eq!(v["port"], 80);
        assert_eq!(v["reserved"], "private");
        assert_eq!(v["listed"], serde_json::json!([{"list": "special-use", "use": "exclude"}]));
        assert_eq!(v["error"], serde_json::Value::Null);
        // The field order is part of the contract: check the raw text.
        let r = parse("203.0.113.77/24", None, &ParseOptions::default());
        let listed = lists.check(r.as_ref().unwrap());
        let raw = serde_json::to_string(&json_line("203.0.113.77/24", &r, &listed)).unwrap();
        assert!(raw.starts_with(r#"{"input":"203.0.113.77/24","itype":"ipv4","value":"203.0.113.0/24","port":null,"derived":[],"reserved":"documentation","listed":"#), "{raw}");
        assert!(raw.ends_with(r#""flags":["host_bits_masked","cidr"],"error":null}"#), "{raw}");
    }

    #[test]
    fn rejected_line_carries_code_and_message() {
        let v = line("0.0.0.0/0", &Allowlist::builtin());
        assert_eq!(v["itype"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], "prefix_too_short");
        assert!(v["error"]["message"].as_str().unwrap().contains("/8"));
    }

    #[test]
    fn overlap_is_a_flag() {
        let v = line("8.0.0.0/8", &Allowlist::builtin());
        assert_eq!(v["listed"][0]["list"], "public-resolvers");
        assert!(v["flags"].as_array().unwrap().iter().any(|f| f == OVERLAP_FLAG));
    }

    #[test]
    fn warninglist_directory_loads_with_uses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/warninglists");
        if !dir.is_dir() {
            assert!(std::env::var_os("CI").is_none(), "CI: {} missing", dir.display());
            eprintln!("SKIPPED: {} missing", dir.display());
            return;
        }
        let mut lists = Allowlist::builtin();
        load_dir(&mut lists, &dir).unwrap();
        let uses: std::collections::HashMap<&str, ListUse> = lists.lists().map(|(n, u, _)| (n, u)).collect();
        assert_eq!(uses["rfc1918"], ListUse::Exclude);
        assert_eq!(uses["amazon-aws"], ListUse::Hold);
        assert_eq!(uses["url-shortener"], ListUse::Hold);
        let v = line("https://bit.ly/x", &lists);
        assert_eq!(v["listed"][0]["list"], "url-shortener");
        assert_eq!(v["listed"][0]["use"], "hold");
    }
}
