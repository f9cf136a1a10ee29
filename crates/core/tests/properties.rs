//! Property tests: normalising is idempotent, the stored form re-parses to the same indicator
//! (with or without its type as a hint), and no input panics.

use apiary_core::{parse, parse_time, Allowlist, IType, ParseOptions};
use proptest::prelude::*;

fn opts() -> ParseOptions {
    ParseOptions::default()
}

fn lists() -> &'static Allowlist {
    static L: std::sync::OnceLock<Allowlist> = std::sync::OnceLock::new();
    L.get_or_init(Allowlist::builtin)
}

/// The stored value must parse to the same indicator, without a hint and with its own type.
fn assert_fixed_point(input: &str) -> Result<(), TestCaseError> {
    if let Ok(ind) = parse(input, None, &opts()) {
        let again = parse(&ind.value, None, &opts());
        prop_assert!(again.is_ok(), "{input:?} -> {:?} does not re-parse: {again:?}", ind.value);
        let again = again.unwrap();
        prop_assert_eq!((again.itype, &again.value), (ind.itype, &ind.value), "input {:?}", input);
        prop_assert!(again.derived == ind.derived, "derived changed for {input:?}");
        prop_assert_eq!(again.reserved, ind.reserved, "reserved changed for {:?}", input);
        let hinted = parse(&ind.value, Some(ind.itype), &opts());
        prop_assert!(hinted.as_ref().is_ok_and(|h| h.value == ind.value), "{input:?}: hinted {hinted:?}");
    }
    Ok(())
}

fn octet() -> impl Strategy<Value = String> {
    (0u8..=255, 0usize..3).prop_map(|(o, pad)| format!("{:0width$}", o, width = 1 + pad))
}

fn ipv4ish() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(octet(), 4),
        prop::option::of(0u8..=33),
        prop::option::of(0u32..70000),
        prop::sample::select(vec![":", "|"]),
    )
        .prop_map(|(o, len, port, sep)| {
            let mut s = o.join(".");
            match (len, port) {
                (Some(l), _) => s.push_str(&format!("/{l}")),
                (None, Some(p)) => s.push_str(&format!("{sep}{p}")),
                _ => {}
            }
            s
        })
}

fn ipv6ish() -> impl Strategy<Value = String> {
    (any::<u128>(), any::<bool>(), prop::option::of(0u8..=129), 0u8..4, any::<bool>()).prop_map(|(a, mapped, len, style, brackets)| {
        let a = if mapped { 0xffff_0000_0000u128 | (a & 0xffff_ffff) } else if style == 3 { a & 0xffff_0000_0000_ffff_0000_0000_0000_ffff } else { a };
        let addr = std::net::Ipv6Addr::from(a);
        let mut s = match style {
            0 => addr.to_string(),
            1 => addr.segments().iter().map(|g| format!("{g:04X}")).collect::<Vec<_>>().join(":"),
            _ => addr.segments().iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":"),
        };
        if let Some(l) = len {
            s.push_str(&format!("/{l}"));
        } else if brackets {
            s = format!("[{s}]:443");
        }
        s
    })
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]{1,12}",
        "[a-z0-9][a-z0-9_-]{0,10}[a-z0-9]",
        "xn--[a-z0-9]{2,10}",
        "[äöüßéпримерテスト]{1,6}",
    ]
}

fn domainish() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 1..5), "[a-zA-Z]{2,6}", any::<bool>(), any::<bool>()).prop_map(|(labels, tld, dot, defang)| {
        let mut s = labels.join(".");
        s.push('.');
        s.push_str(&tld);
        if dot {
            s.push('.');
        }
        if defang {
            s = s.replacen('.', "[.]", 1);
        }
        s
    })
}

fn urlish() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["http", "HTTPS", "hxxp", "hXXps", "ftp", "fxp", "ws", "ssh"]),
        prop_oneof![domainish(), ipv4ish().prop_map(|s| s.split(['/', '|', ':']).next().unwrap().to_string())],
        prop::option::of(0u32..70000),
        "(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,12}){0,3}",
        prop::option::of("[a-zA-Z0-9=&%]{0,12}"),
        prop::option::of("[a-zA-Z0-9]{0,6}"),
    )
        .prop_map(|(scheme, host, port, path, query, frag)| {
            let mut s = format!("{scheme}://{host}");
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            s.push_str(&path);
            if let Some(q) = query {
                s.push('?');
                s.push_str(&q);
            }
            if let Some(f) = frag {
                s.push('#');
                s.push_str(&f);
            }
            s
        })
}

fn emailish() -> impl Strategy<Value = String> {
    ("[a-zA-Z0-9.+?=_!#-]{1,20}", domainish()).prop_map(|(l, d)| format!("{l}@{d}"))
}

fn hashish() -> impl Strategy<Value = String> {
    prop::sample::select(vec![30usize, 32, 40, 41, 56, 64, 96, 128, 129]).prop_flat_map(|n| prop::string::string_regex(&format!("[0-9a-fA-F]{{{n}}}")).unwrap())
}

fn anything_like_an_indicator() -> impl Strategy<Value = String> {
    prop_oneof![
        ipv4ish(),
        ipv6ish(),
        domainish(),
        urlish(),
        emailish(),
        hashish(),
        "(AS|as|ASN)?[0-9]{1,12}(\\.[0-9]{1,6})?",
        "[a-zA-Z0-9.:/@|\\[\\](){}%_ -]{0,40}",
        "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn normalising_twice_changes_nothing(s in anything_like_an_indicator()) {
        assert_fixed_point(&s)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let s = String::from_utf8_lossy(&bytes);
        let lists = lists();
        for hint in std::iter::once(None).chain(IType::ALL.iter().copied().map(Some)) {
            if let Ok(ind) = parse(&s, hint, &opts()) {
                lists.check(&ind);
            }
        }
        let _ = parse_time(&s);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}", hint in prop::option::of(prop::sample::select(IType::ALL.to_vec()))) {
        let lists = lists();
        if let Ok(ind) = parse(&s, hint, &opts()) {
            lists.check(&ind);
        }
        let _ = parse_time(&s);
    }

    #[test]
    fn times_never_panic(s in "[0-9]{1,20}|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,12})?)?)?( ?(Z|UTC|[+-][0-9]{2}(:?[0-9]{2})?))?") {
        if let Ok(t) = parse_time(&s) {
            // The formatted form parses back to the same instant (to the microsecond).
            let f = apiary_core::format_time(t);
            let back = parse_time(&f).unwrap();
            prop_assert_eq!(back.timestamp_micros(), t.timestamp_micros(), "{} -> {}", s, f);
        }
    }
}
