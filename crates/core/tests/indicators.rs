//! The indicator rules as tables. The core-relevant cases of `../shared/cases/indicators.jsonl`
//! are embedded here (ids in the first column) so they run without `../shared`; the other rows
//! pin down the same kinds of fault for neighbouring inputs.

use apiary_core::{parse, Flag, IType, ParseOptions, RejectCode, Reserved};

fn opts() -> ParseOptions {
    ParseOptions::default()
}

/// (case id or "", input, type hint, expected type, expected value, expected port)
type Accepted = (&'static str, &'static str, Option<IType>, IType, &'static str, Option<u16>);
const ACCEPTED: &[Accepted] = &[
    // TI-01: hxxps refangs to https, not http; scheme and host lowercased, path kept.
    ("TI-01", "HXXPS://login.example[.]com/verify", None, IType::Url, "https://login.example.com/verify", None),
    ("", "hxxp://evil[.]example/a/B?c=D", None, IType::Url, "http://evil.example/a/B?c=D", None),
    ("", "fxp://files.example(.)net/x", None, IType::Url, "ftp://files.example.net/x", None),
    ("", "hxxp[://]evil{dot}example[/]x", None, IType::Url, "http://evil.example/x", None),
    // TI-02: zero-padded octets are decimal.
    ("TI-02", "198.051.100.007", None, IType::Ipv4, "198.51.100.7", None),
    ("", "010.000.000.001", None, IType::Ipv4, "10.0.0.1", None),
    ("", "198.51.100.7", None, IType::Ipv4, "198.51.100.7", None),
    ("", " '198.51.100.7' ", None, IType::Ipv4, "198.51.100.7", None),
    ("", "198[.]51[.]100[.]7", None, IType::Ipv4, "198.51.100.7", None),
    // TI-04: host bits masked.
    ("TI-04", "203.0.113.77/24", None, IType::Ipv4, "203.0.113.0/24", None),
    ("", "203.0.113.0/255.255.255.0", None, IType::Ipv4, "203.0.113.0/24", None),
    ("", "203.0.113.7/32", None, IType::Ipv4, "203.0.113.7", None),
    ("", "10.0.0.0/8", None, IType::Ipv4, "10.0.0.0/8", None),
    // TI-07: trailing dot and case.
    ("TI-07", "c2.example.com.", None, IType::Fqdn, "c2.example.com", None),
    ("TI-07", "C2.Example.com", None, IType::Fqdn, "c2.example.com", None),
    // TI-08: IDN, both forms one A-label.
    ("TI-08", "xn--e1afmkfd.xn--80akhbyknj4f", None, IType::Fqdn, "xn--e1afmkfd.xn--80akhbyknj4f", None),
    ("TI-08", "пример.испытание", None, IType::Fqdn, "xn--e1afmkfd.xn--80akhbyknj4f", None),
    ("TI-08", "ПРИМЕР.ИСПЫТАНИЕ", None, IType::Fqdn, "xn--e1afmkfd.xn--80akhbyknj4f", None),
    ("", "bücher.example", None, IType::Fqdn, "xn--bcher-kva.example", None),
    // TI-09: default port dropped, port never in the fqdn.
    ("TI-09", "https://WWW.example.edu:443/login", None, IType::Url, "https://www.example.edu/login", None),
    ("", "http://www.example.edu:8080/login", None, IType::Url, "http://www.example.edu:8080/login", Some(8080)),
    ("", "http://Example.EDU", None, IType::Url, "http://example.edu/", None),
    ("", "http://example.edu?q=1", None, IType::Url, "http://example.edu/?q=1", None),
    ("", "http://user:Pw@Example.edu./x", None, IType::Url, "http://user:Pw@example.edu/x", None),
    ("", "http://198.051.100.007:80/x", None, IType::Url, "http://198.51.100.7/x", None),
    ("", "http://[2001:DB8:0:0::1]:8443/", None, IType::Url, "http://[2001:db8::1]:8443/", Some(8443)),
    ("", "http://пример.испытание/путь", None, IType::Url, "http://xn--e1afmkfd.xn--80akhbyknj4f/путь", None),
    ("", "example.edu/login.php", None, IType::Url, "http://example.edu/login.php", None),
    ("", "example.edu", Some(IType::Url), IType::Url, "http://example.edu/", None),
    ("", "www.example.edu:8080", None, IType::Fqdn, "www.example.edu", Some(8080)),
    // TI-10: e-mail local part kept, domain lowercased.
    ("TI-10", "Billing+inv?25@Example.ORG", None, IType::Email, "Billing+inv?25@example.org", None),
    ("", "billing[@]example[.]org", None, IType::Email, "billing@example.org", None),
    ("", "mailto:Info@Bücher.Example", None, IType::Email, "Info@xn--bcher-kva.example", None),
    // TI-11: hashes lowercased.
    ("TI-11", "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", None, IType::Sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", None),
    ("TI-11", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", None, IType::Sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", None),
    // TI-12: length table.
    ("TI-12", "A94A8FE5CCB19BA61C4C0873D391E987982FBBD3", None, IType::Sha1, "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", None),
    ("", "D41D8CD98F00B204E9800998ECF8427E", None, IType::Md5, "d41d8cd98f00b204e9800998ecf8427e", None),
    ("", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", None, IType::Sha512, "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", None),
    // TI-15 (indicator part), TI-16 (indicator part), TI-18 (second item), TI-19/20 (key part).
    ("TI-15", "203.0.113.50", None, IType::Ipv4, "203.0.113.50", None),
    ("TI-16", "\u{feff}198.51.100.9", None, IType::Ipv4, "198.51.100.9", None),
    ("TI-18", "198.51.100.21", None, IType::Ipv4, "198.51.100.21", None),
    ("TI-19", "192.0.2.44", None, IType::Ipv4, "192.0.2.44", None),
    ("TI-20", "198.51.100.77", None, IType::Ipv4, "198.51.100.77", None),
    // TI-23: port kept as a field.
    ("TI-23", "192.168.31.210:80", None, IType::Ipv4, "192.168.31.210", Some(80)),
    ("", "192.168.31.210|80", None, IType::Ipv4, "192.168.31.210", Some(80)),
    ("", "[2001:db8::1]:443", None, IType::Ipv6, "2001:db8::1", Some(443)),
    ("", "[2001:db8::1]", None, IType::Ipv6, "2001:db8::1", None),
    ("", "2001:db8::1|53", None, IType::Ipv6, "2001:db8::1", Some(53)),
    // IPv6 in RFC 5952 form.
    ("", "2001:0DB8:0000:0000:0000:0000:0000:0001", None, IType::Ipv6, "2001:db8::1", None),
    ("", "2001:db8:0:1:0:0:0:1", None, IType::Ipv6, "2001:db8:0:1::1", None),
    ("", "2001:db8:0:0:1:0:0:1", None, IType::Ipv6, "2001:db8::1:0:0:1", None),
    ("", "2001:db8::0:1:0:0:1", None, IType::Ipv6, "2001:db8::1:0:0:1", None),
    ("", "2001:DB8::1/32", None, IType::Ipv6, "2001:db8::/32", None),
    // IPv4-mapped: one attacker, one indicator.
    ("", "::ffff:198.51.100.7", None, IType::Ipv4, "198.51.100.7", None),
    ("", "::FFFF:C633:6407", None, IType::Ipv4, "198.51.100.7", None),
    ("", "[::ffff:198.51.100.7]:22", None, IType::Ipv4, "198.51.100.7", Some(22)),
    ("", "::ffff:198.51.100.0/120", None, IType::Ipv4, "198.51.100.0/24", None),
    ("", "::ffff:198.51.100.7", Some(IType::Ipv6), IType::Ipv4, "198.51.100.7", None),
    // ASN.
    ("", "AS64500", None, IType::Asn, "AS64500", None),
    ("", "as64500", None, IType::Asn, "AS64500", None),
    ("", "ASN 64500", None, IType::Asn, "AS64500", None),
    ("", "64500", Some(IType::Asn), IType::Asn, "AS64500", None),
    ("", "AS1.10", None, IType::Asn, "AS65546", None),
    // Single-label names only when the caller says fqdn.
    ("", "localhost", Some(IType::Fqdn), IType::Fqdn, "localhost", None),
    // Found by the fuzzer: a hex-only single label is a name when the caller says fqdn.
    ("", "bbb.", Some(IType::Fqdn), IType::Fqdn, "bbb", None),
    ("", "as1.example.com", None, IType::Fqdn, "as1.example.com", None),
    ("", "_dmarc.example.com", None, IType::Fqdn, "_dmarc.example.com", None),
];

/// (case id or "", input, type hint, expected rejection)
const REJECTED: &[(&str, &str, Option<IType>, RejectCode)] = &[
    ("TI-05", "128.0.0.0/1", None, RejectCode::PrefixTooShort),
    ("TI-05", "0.0.0.0/0", None, RejectCode::PrefixTooShort),
    ("", "::/0", None, RejectCode::PrefixTooShort),
    ("", "2001::/16", None, RejectCode::PrefixTooShort),
    ("", "::ffff:0.0.0.0/96", None, RejectCode::PrefixTooShort),
    ("TI-12", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3f", None, RejectCode::BadHashLength),
    ("", "d41d8cd98f00b204e9800998ecf8427", None, RejectCode::BadHashLength),
    ("", "d41d8cd98f00b204e9800998ecf8427e", Some(IType::Sha1), RejectCode::TypeMismatch),
    ("", "", None, RejectCode::Empty),
    ("", "   ", None, RejectCode::Empty),
    ("", "198.51.100.256", None, RejectCode::InvalidAddress),
    ("", "198.51.100", None, RejectCode::InvalidAddress),
    ("", "1.2.3.4.5", None, RejectCode::InvalidAddress),
    ("", "0198.51.100.7", None, RejectCode::InvalidAddress),
    ("", "2001:db8::1::2", None, RejectCode::InvalidAddress),
    ("", "fe80::1%eth0", None, RejectCode::InvalidAddress),
    ("", "198.51.100.0/33", None, RejectCode::InvalidPrefix),
    ("", "198.51.100.0/255.0.255.0", None, RejectCode::InvalidPrefix),
    ("", "198.51.100.7:0", None, RejectCode::InvalidPort),
    ("", "198.51.100.7:65536", None, RejectCode::InvalidPort),
    ("", "198.51.100.0/24:80", None, RejectCode::InvalidPrefix),
    ("", "xn--zz.example", None, RejectCode::InvalidIdn),
    ("", "-bad.example.com", None, RejectCode::InvalidDomain),
    ("", "a..example.com", None, RejectCode::InvalidDomain),
    ("", "localhost", None, RejectCode::UnknownType),
    ("", "hello world", None, RejectCode::InvalidDomain),
    ("", "http://", None, RejectCode::InvalidUrl),
    ("", "http://exa mple.com/", None, RejectCode::InvalidUrl),
    ("", "@example.com", None, RejectCode::InvalidEmail),
    ("", "a b@example.com", None, RejectCode::InvalidEmail),
    ("", "AS99999999999", None, RejectCode::InvalidAsn),
    ("", "example.com", Some(IType::Ipv4), RejectCode::TypeMismatch),
    ("", "198.51.100.7", Some(IType::Fqdn), RejectCode::TypeMismatch),
    ("", "12345", None, RejectCode::UnknownType),
];

#[test]
fn accepted_values() {
    let mut failures = Vec::new();
    for &(id, input, hint, itype, value, port) in ACCEPTED {
        match parse(input, hint, &opts()) {
            Ok(ind) if ind.itype == itype && ind.value == value && ind.port == port => {}
            other => failures.push(format!("{id} {input:?} (hint {hint:?}): want {itype} {value} {port:?}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn rejected_values() {
    let mut failures = Vec::new();
    for &(id, input, hint, code) in REJECTED {
        match parse(input, hint, &opts()) {
            Err(e) if e.code == code && !e.message.is_empty() => {}
            other => failures.push(format!("{id} {input:?} (hint {hint:?}): want {code:?}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn ti18_overlong_rejected_not_truncated() {
    let long = format!("http://203.0.113.20/{}", "a".repeat(40_000));
    assert_eq!(parse(&long, None, &opts()).unwrap_err().code, RejectCode::TooLong);
    // Exactly at the limit is accepted; one byte more is not.
    let at = format!("http://203.0.113.20/{}", "a".repeat(4096 - 20));
    assert_eq!(at.len(), 4096);
    assert!(parse(&at, None, &opts()).is_ok());
    assert_eq!(parse(&format!("{at}a"), None, &opts()).unwrap_err().code, RejectCode::TooLong);
}

#[test]
fn flags_and_reserved() {
    let cases: &[(&str, &[Flag], Option<Reserved>)] = &[
        ("198.051.100.007", &[Flag::LeadingZeros], Some(Reserved::Documentation)),
        ("203.0.113.77/24", &[Flag::HostBitsMasked, Flag::Cidr], Some(Reserved::Documentation)),
        ("::ffff:192.168.1.1", &[Flag::Mapped], Some(Reserved::Private)),
        ("::ffff:10.1.2.0/120", &[Flag::Mapped, Flag::Cidr], Some(Reserved::Private)),
        ("HXXPS://login.example[.]com/verify", &[Flag::Refanged], None),
        ("пример.испытание", &[Flag::Idn], None),
        ("example.edu/x", &[Flag::SchemeAdded], None),
        ("http://127.0.0.1:8080/x", &[], Some(Reserved::Loopback)),
        ("8.8.8.8", &[], None),
        ("100.64.1.1", &[], Some(Reserved::Cgnat)),
        ("fe80::1", &[], Some(Reserved::LinkLocal)),
        ("[fd00::1]:22", &[], Some(Reserved::UniqueLocal)),
        ("2001:db8::/48", &[Flag::Cidr], Some(Reserved::Documentation)),
        ("172.0.0.0/8", &[Flag::Cidr], None),
    ];
    for &(input, flags, reserved) in cases {
        let ind = parse(input, None, &opts()).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(ind.flags, flags, "{input}");
        assert_eq!(ind.reserved, reserved, "{input}");
    }
}

#[test]
fn derived_hosts() {
    let cases = [
        ("https://WWW.example.edu:443/login", IType::Fqdn, "www.example.edu"),
        ("http://198.51.100.7/x", IType::Ipv4, "198.51.100.7"),
        ("http://[2001:db8::1]/x", IType::Ipv6, "2001:db8::1"),
        ("Billing+inv?25@Example.ORG", IType::Fqdn, "example.org"),
    ];
    for (input, itype, value) in cases {
        let ind = parse(input, None, &opts()).unwrap();
        assert_eq!(ind.derived.len(), 1, "{input}");
        assert_eq!((ind.derived[0].itype, ind.derived[0].value.as_str()), (itype, value), "{input}");
    }
}

#[test]
fn minimum_prefix_is_configurable() {
    let loose = ParseOptions { min_prefix_v4: 0, min_prefix_v6: 0, ..ParseOptions::default() };
    assert_eq!(parse("128.0.0.0/1", None, &loose).unwrap().value, "128.0.0.0/1");
    let strict = ParseOptions { min_prefix_v4: 24, ..ParseOptions::default() };
    assert_eq!(parse("10.0.0.0/16", None, &strict).unwrap_err().code, RejectCode::PrefixTooShort);
    let short = ParseOptions { max_len: 10, ..ParseOptions::default() };
    assert_eq!(parse("www.example.com", None, &short).unwrap_err().code, RejectCode::TooLong);
}
