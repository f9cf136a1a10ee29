//! Any bytes as a warninglist: loading either succeeds or names the problem; never panics.
#![no_main]

use apiary_core::{parse, Allowlist, ListUse, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut a = Allowlist::default();
    if a.add_warninglist_json(&text, ListUse::Hold).is_ok() {
        for v in ["198.51.100.7", "203.0.113.0/24", "www.example.com", "https://a.example/x"] {
            if let Ok(ind) = parse(v, None, &ParseOptions::default()) {
                a.check(&ind);
            }
        }
    } else {
        assert!(a.is_empty());
    }
});
