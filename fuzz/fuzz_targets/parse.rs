//! Any bytes, as a value with and without a type hint: no panic, and every accepted value's
//! stored form parses back to the same indicator.
#![no_main]

use apiary_core::{parse, parse_time, Allowlist, IType, ParseOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn lists() -> &'static Allowlist {
    static L: OnceLock<Allowlist> = OnceLock::new();
    L.get_or_init(Allowlist::builtin)
}

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::default();
    // The first byte picks a hint, the rest is the value.
    let (hint, rest) = match data.split_first() {
        Some((h, r)) => (IType::ALL.get(*h as usize % 12).copied(), r),
        None => (None, data),
    };
    let s = String::from_utf8_lossy(rest);
    for h in [None, hint] {
        if let Ok(ind) = parse(&s, h, &opts) {
            // With a hint, the stored value re-parses given its type (a single-label name is
            // a name only when the caller says so); without one, on its own.
            let again = parse(&ind.value, h.map(|_| ind.itype), &opts)
                .unwrap_or_else(|e| panic!("{s:?} -> {:?} does not re-parse: {e}", ind.value));
            assert_eq!((again.itype, &again.value), (ind.itype, &ind.value), "input {s:?}");
            assert_eq!(again.reserved, ind.reserved, "input {s:?}");
            lists().check(&ind);
        }
    }
    if let Ok(t) = parse_time(&s) {
        let f = apiary_core::format_time(t);
        assert!(parse_time(&f).is_ok(), "{s:?} -> {f}");
    }
});
