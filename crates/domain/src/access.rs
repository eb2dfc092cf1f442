//! IP access lists (CONTRACT §7): entries are a single address (`ipAddress`) or a CIDR block
//! (`cidrBlock`), IPv4 or IPv6. An empty list allows every address.

use ipnet::IpNet;
use std::net::IpAddr;

use crate::ValidationError;

/// One entry, normalized: a single address is held as a /32 or /128 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessEntry {
    pub net: IpNet,
    /// Given as `cidrBlock` (true) or `ipAddress` (false); decides how it is shown.
    pub is_cidr: bool,
}

/// IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`) are matched as IPv4.
pub fn canonical_addr(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    }
}

impl AccessEntry {
    pub fn from_ip_address(s: &str) -> Result<Self, ValidationError> {
        let addr: IpAddr = s
            .parse()
            .map_err(|_| ValidationError::new("ipAddress", "must be an IPv4 or IPv6 address"))?;
        Ok(Self {
            net: IpNet::from(canonical_addr(addr)),
            is_cidr: false,
        })
    }

    /// Parses a CIDR block; host bits must be zero (`192.0.2.0/24`, not `192.0.2.7/24`).
    pub fn from_cidr_block(s: &str) -> Result<Self, ValidationError> {
        let bad = || {
            ValidationError::new(
                "cidrBlock",
                "must be an IPv4 or IPv6 CIDR block such as 192.0.2.0/24",
            )
        };
        let net: IpNet = s.parse().map_err(|_| bad())?;
        if net.trunc() != net {
            return Err(ValidationError::new(
                "cidrBlock",
                "must not have host bits set (use the network address)",
            ));
        }
        Ok(Self { net, is_cidr: true })
    }

    /// Parses a stored or path form: a CIDR (`a/len`) or a bare address.
    pub fn parse_any(s: &str) -> Result<Self, ValidationError> {
        if s.contains('/') {
            Self::from_cidr_block(s)
        } else {
            Self::from_ip_address(s)
        }
    }

    /// The storage key: always CIDR notation.
    pub fn key(&self) -> String {
        self.net.to_string()
    }

    /// The wire value: the bare address for `ipAddress` entries, CIDR for `cidrBlock`.
    pub fn display(&self) -> String {
        if self.is_cidr {
            self.net.to_string()
        } else {
            self.net.addr().to_string()
        }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.net.contains(&canonical_addr(addr))
    }
}

/// Whether `addr` may use a credential with this access list.
pub fn allows<'a>(list: impl IntoIterator<Item = &'a AccessEntry>, addr: IpAddr) -> bool {
    let mut any = false;
    for e in list {
        any = true;
        if e.contains(addr) {
            return true;
        }
    }
    !any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parsing_and_display() {
        let a = AccessEntry::from_ip_address("192.0.2.7").unwrap();
        assert_eq!(a.key(), "192.0.2.7/32");
        assert_eq!(a.display(), "192.0.2.7");
        let c = AccessEntry::from_cidr_block("192.0.2.0/24").unwrap();
        assert_eq!(c.display(), "192.0.2.0/24");
        assert!(AccessEntry::from_cidr_block("192.0.2.7/24").is_err());
        assert!(AccessEntry::from_cidr_block("192.0.2.0/33").is_err());
        assert!(AccessEntry::from_ip_address("192.0.2.0/24").is_err());
        assert!(AccessEntry::from_ip_address("300.1.1.1").is_err());
        let v6 = AccessEntry::from_cidr_block("2001:db8::/32").unwrap();
        assert_eq!(v6.display(), "2001:db8::/32");
        assert_eq!(AccessEntry::parse_any("2001:db8::/32").unwrap(), v6);
        assert_eq!(AccessEntry::parse_any("192.0.2.7").unwrap(), a);
    }

    #[test]
    fn matching() {
        let list = [
            AccessEntry::from_cidr_block("10.0.0.0/8").unwrap(),
            AccessEntry::from_ip_address("2001:db8::1").unwrap(),
        ];
        assert!(allows(&list, ip("10.1.2.3")));
        assert!(allows(&list, ip("::ffff:10.1.2.3")));
        assert!(allows(&list, ip("2001:db8::1")));
        assert!(!allows(&list, ip("2001:db8::2")));
        assert!(!allows(&list, ip("11.0.0.1")));
        assert!(allows(&[], ip("11.0.0.1")));
    }
}
