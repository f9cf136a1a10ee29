//! Indicator types.

use serde::{Deserialize, Serialize};

/// The type of an indicator. Addresses and CIDRs share `Ipv4`/`Ipv6`
/// (a CIDR value contains a `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IType {
    Ipv4,
    Ipv6,
    Fqdn,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Asn,
}

impl IType {
    pub const ALL: [IType; 10] = [
        IType::Ipv4,
        IType::Ipv6,
        IType::Fqdn,
        IType::Url,
        IType::Email,
        IType::Md5,
        IType::Sha1,
        IType::Sha256,
        IType::Sha512,
        IType::Asn,
    ];

    /// The native name (`ipv4`, `url`, ...), as used in the API, CLI and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            IType::Ipv4 => "ipv4",
            IType::Ipv6 => "ipv6",
            IType::Fqdn => "fqdn",
            IType::Url => "url",
            IType::Email => "email",
            IType::Md5 => "md5",
            IType::Sha1 => "sha1",
            IType::Sha256 => "sha256",
            IType::Sha512 => "sha512",
            IType::Asn => "asn",
        }
    }

    /// Parse a type name, accepting common aliases (`uri` for url, `domain` for fqdn, ...).
    pub fn from_name(s: &str) -> Option<IType> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "ipv4" | "ip" | "ipv4-addr" | "ip-src" | "ip-dst" => IType::Ipv4,
            "ipv6" | "ipv6-addr" => IType::Ipv6,
            "fqdn" | "domain" | "hostname" | "domain-name" => IType::Fqdn,
            "url" | "uri" => IType::Url,
            "email" | "email-addr" | "email-src" | "email-dst" => IType::Email,
            "md5" => IType::Md5,
            "sha1" => IType::Sha1,
            "sha256" => IType::Sha256,
            "sha512" => IType::Sha512,
            "asn" | "as" => IType::Asn,
            _ => return None,
        })
    }

    pub fn is_address(self) -> bool {
        matches!(self, IType::Ipv4 | IType::Ipv6)
    }

    pub fn is_hash(self) -> bool {
        matches!(self, IType::Md5 | IType::Sha1 | IType::Sha256 | IType::Sha512)
    }
}

impl std::fmt::Display for IType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
