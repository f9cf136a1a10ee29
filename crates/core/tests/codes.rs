//! docs/codes.md lists every code, and each code's JSON form is its documented word.

use apiary_core::{Flag, RejectCode, Reserved};

fn doc() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/codes.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn check(doc: &str, code: &str, json: String) {
    assert_eq!(json, format!("\"{code}\""), "serialised form of `{code}`");
    assert!(doc.contains(&format!("| `{code}` |")), "docs/codes.md has no row for `{code}`");
}

#[test]
fn every_code_is_documented_and_serialises_as_documented() {
    let doc = doc();
    for f in Flag::ALL {
        check(&doc, f.as_str(), serde_json::to_string(&f).unwrap());
    }
    for r in Reserved::ALL {
        check(&doc, r.as_str(), serde_json::to_string(&r).unwrap());
    }
    for c in RejectCode::ALL {
        check(&doc, c.as_str(), serde_json::to_string(&c).unwrap());
    }
}
