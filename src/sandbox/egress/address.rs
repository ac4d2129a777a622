//! Which addresses the egress proxy may connect to: globally routable ones, and the ranges the operator allows.
//!
//! A repository's `allow_hosts` says which *names* a step may reach, but a name (or an IP literal on the
//! list) can point anywhere, including the worker's loopback, the cloud metadata service at 169.254.169.254
//! or the private network the worker sits in. The repository is not trusted to widen the operator's policy,
//! so the proxy judges every address it is about to connect to with an [`AddressPolicy`]. IPv6 forms that
//! carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) are judged by that address,
//! since that is where their packets end up.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The IPv4 ranges that are not globally routable (IANA's special-purpose registry), with their names.
/// The broadcast address comes before the reserved range that holds it, so that it is named as itself.
const SPECIAL_V4: [(Ipv4Net, &str); 15] = [
    (v4(0, 0, 0, 0, 8), "unspecified"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "carrier-grade NAT"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(255, 255, 255, 255, 32), "broadcast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// The IPv6 ranges inside global unicast (2000::/3) that are not globally routable, and those outside it
/// that have a name; the ones that embed an IPv4 address are in [`embedded_v4`]. Teredo (2001::/32) lies
/// inside the IETF protocol assignments and is judged before them.
const SPECIAL_V6: [(Ipv6Net, &str); 10] = [
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "local-use NAT64"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), "IETF protocol assignments"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique-local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// Every globally routable IPv6 unicast address is in here; the rest is unassigned or special.
const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// Where the egress proxy may connect: every globally routable address, plus the ranges the operator
/// allows with `ERRAND_EGRESS_ALLOW_NETS`. A repository's configuration never widens it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

/// Why the policy keeps the proxy from an address: the non-public range it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotPublic {
    /// How an IPv6 address carries the IPv4 address that was judged (`IPv4-mapped`), if it does.
    carrier: Option<&'static str>,
    name: &'static str,
    range: IpNet,
}

impl fmt::Display for NotPublic {
    /// `loopback 127.0.0.0/8`, `IPv4-mapped link-local 169.254.0.0/16`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(carrier) = self.carrier {
            write!(f, "{carrier} ")?;
        }
        write!(f, "{} {}", self.name, self.range)
    }
}

impl AddressPolicy {
    /// Globally routable addresses only: the default.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Globally routable addresses and the operator's `nets`, CIDRs as `ERRAND_EGRESS_ALLOW_NETS` lists them
    /// (`10.20.0.0/16`, `fd12::/16`; a bare address is itself alone). Blank entries are skipped, so that a
    /// trailing comma does no harm. The error names the entry.
    pub fn parse(nets: &[String]) -> Result<Self, String> {
        let allowed = nets
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("`{entry}` is not a network: write a CIDR such as `10.20.0.0/16` or `fd12::/16`")
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Whether the proxy may connect to `ip`; if not, the range that keeps it out.
    pub fn check(&self, ip: IpAddr) -> Result<(), NotPublic> {
        match ip {
            IpAddr::V4(ip) => self.check_v4(ip, None),
            IpAddr::V6(ip) => self.check_v6(ip),
        }
    }

    fn operator_allows(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip))
    }

    fn check_v4(&self, ip: Ipv4Addr, carrier: Option<&'static str>) -> Result<(), NotPublic> {
        if self.operator_allows(ip.into()) {
            return Ok(());
        }
        match SPECIAL_V4.iter().find(|(range, _)| range.contains(&ip)) {
            Some(&(range, name)) => Err(NotPublic { carrier, name, range: range.into() }),
            None => Ok(()),
        }
    }

    fn check_v6(&self, ip: Ipv6Addr) -> Result<(), NotPublic> {
        if self.operator_allows(ip.into()) {
            return Ok(());
        }
        // `::` and `::1` sit in the IPv4-compatible range too, but are better named as themselves.
        if let Some(&(range, name)) = SPECIAL_V6[..2].iter().find(|(range, _)| range.contains(&ip)) {
            return Err(NotPublic { carrier: None, name, range: range.into() });
        }
        if let Some((carrier, embedded)) = embedded_v4(ip) {
            return embedded.iter().try_for_each(|&v4| self.check_v4(v4, Some(carrier)));
        }
        if let Some(&(range, name)) = SPECIAL_V6.iter().find(|(range, _)| range.contains(&ip)) {
            return Err(NotPublic { carrier: None, name, range: range.into() });
        }
        if !GLOBAL_UNICAST.contains(&ip) {
            return Err(NotPublic { carrier: None, name: "outside global unicast", range: GLOBAL_UNICAST.into() });
        }
        Ok(())
    }
}

/// The IPv4 addresses an IPv6 address carries, and the name of the form that carries them. Teredo carries
/// two, its server's and (inverted) its client's, and reaching it involves both.
fn embedded_v4(ip: Ipv6Addr) -> Option<(&'static str, Vec<Ipv4Addr>)> {
    let s = ip.segments();
    let from = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    let last_32 = from(s[6], s[7]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(("IPv4-mapped", vec![last_32])),
        [0, 0, 0, 0, 0, 0, _, _] => Some(("IPv4-compatible", vec![last_32])),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(("NAT64", vec![last_32])),
        [0x2002, high, low, ..] => Some(("6to4", vec![from(high, low)])),
        [0x2001, 0, high, low, ..] => Some(("Teredo", vec![from(high, low), from(!s[6], !s[7])])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(nets: &[&str]) -> AddressPolicy {
        let nets: Vec<String> = nets.iter().map(|&net| net.to_owned()).collect();
        AddressPolicy::parse(&nets).unwrap_or_else(|error| panic!("{error}"))
    }

    /// What the policy says of `ip`: `Ok` or the range's description.
    fn verdict(policy: &AddressPolicy, ip: &str) -> Result<(), String> {
        let ip: IpAddr = ip.parse().unwrap_or_else(|_| panic!("{ip} is an IP"));
        policy.check(ip).map_err(|not_public| not_public.to_string())
    }

    #[test]
    fn every_ipv4_range_that_is_not_globally_routable_is_refused_and_named() {
        let strict = AddressPolicy::strict();
        for (ip, why) in [
            ("127.0.0.1", "loopback 127.0.0.0/8"),
            ("127.255.255.254", "loopback 127.0.0.0/8"),
            ("0.0.0.0", "unspecified 0.0.0.0/8"),
            ("0.1.2.3", "unspecified 0.0.0.0/8"),
            ("10.0.0.1", "private 10.0.0.0/8"),
            ("172.16.5.4", "private 172.16.0.0/12"),
            ("172.31.255.255", "private 172.16.0.0/12"),
            ("192.168.1.1", "private 192.168.0.0/16"),
            ("169.254.169.254", "link-local 169.254.0.0/16"),
            ("100.64.0.1", "carrier-grade NAT 100.64.0.0/10"),
            ("100.127.255.255", "carrier-grade NAT 100.64.0.0/10"),
            ("192.0.0.8", "IETF protocol assignments 192.0.0.0/24"),
            ("192.0.2.1", "documentation 192.0.2.0/24"),
            ("198.51.100.7", "documentation 198.51.100.0/24"),
            ("203.0.113.9", "documentation 203.0.113.0/24"),
            ("198.18.0.1", "benchmarking 198.18.0.0/15"),
            ("198.19.255.255", "benchmarking 198.18.0.0/15"),
            ("224.0.0.1", "multicast 224.0.0.0/4"),
            ("239.255.255.250", "multicast 224.0.0.0/4"),
            ("240.0.0.1", "reserved 240.0.0.0/4"),
            ("255.255.255.254", "reserved 240.0.0.0/4"),
            ("255.255.255.255", "broadcast 255.255.255.255/32"),
        ] {
            assert_eq!(verdict(&strict, ip), Err(why.to_owned()), "{ip}");
        }
    }

    #[test]
    fn every_ipv6_range_that_is_not_globally_routable_is_refused_and_named() {
        let strict = AddressPolicy::strict();
        for (ip, why) in [
            ("::", "unspecified ::/128"),
            ("::1", "loopback ::1/128"),
            ("fe80::1", "link-local fe80::/10"),
            ("febf:ffff::1", "link-local fe80::/10"),
            ("fec0::1", "site-local fec0::/10"),
            ("fc00::1", "unique-local fc00::/7"),
            ("fd00::1", "unique-local fc00::/7"),
            ("ff02::1", "multicast ff00::/8"),
            ("ff0e::1", "multicast ff00::/8"),
            ("2001:db8::1", "documentation 2001:db8::/32"),
            ("100::1", "discard-only 100::/64"),
            ("2001:2::1", "IETF protocol assignments 2001::/23"),
            ("64:ff9b:1::a00:1", "local-use NAT64 64:ff9b:1::/48"),
            ("4000::1", "outside global unicast 2000::/3"),
            ("e000::1", "outside global unicast 2000::/3"),
        ] {
            assert_eq!(verdict(&strict, ip), Err(why.to_owned()), "{ip}");
        }
    }

    #[test]
    fn ipv6_addresses_that_carry_an_ipv4_address_are_judged_by_it() {
        let strict = AddressPolicy::strict();
        for (ip, why) in [
            ("::ffff:127.0.0.1", "IPv4-mapped loopback 127.0.0.0/8"),
            ("::ffff:169.254.169.254", "IPv4-mapped link-local 169.254.0.0/16"),
            ("::ffff:10.1.2.3", "IPv4-mapped private 10.0.0.0/8"),
            ("::ffff:0.0.0.0", "IPv4-mapped unspecified 0.0.0.0/8"),
            ("::127.0.0.1", "IPv4-compatible loopback 127.0.0.0/8"),
            ("::192.168.0.1", "IPv4-compatible private 192.168.0.0/16"),
            ("64:ff9b::7f00:1", "NAT64 loopback 127.0.0.0/8"),
            ("64:ff9b::a9fe:a9fe", "NAT64 link-local 169.254.0.0/16"),
            ("2002:7f00:1::1", "6to4 loopback 127.0.0.0/8"),
            ("2002:a9fe:a9fe::", "6to4 link-local 169.254.0.0/16"),
            // A Teredo client's address is stored inverted: 0x80ff_fffe is 127.0.0.1.
            ("2001:0:0808:0808::80ff:fffe", "Teredo loopback 127.0.0.0/8"),
            ("2001:0:0a00:0001::f7f7:f7f7", "Teredo private 10.0.0.0/8"),
        ] {
            assert_eq!(verdict(&strict, ip), Err(why.to_owned()), "{ip}");
        }
        for ip in ["::ffff:1.1.1.1", "::8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2001:0:808:808::fefe:fefe"] {
            assert_eq!(verdict(&strict, ip), Ok(()), "{ip} carries 1.1.1.1 or 8.8.8.8");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let strict = AddressPolicy::strict();
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(verdict(&strict, ip), Ok(()), "{ip}");
        }
    }

    #[test]
    fn an_operator_range_lets_through_exactly_its_addresses() {
        let operator = policy(&["10.20.0.0/16", " fd12::/16 ", "127.0.0.1", ""]);
        for ip in ["10.20.0.1", "10.20.255.255", "fd12::1", "fd12:ffff::9", "127.0.0.1", "::ffff:10.20.3.4", "8.8.8.8"]
        {
            assert_eq!(verdict(&operator, ip), Ok(()), "{ip}");
        }
        for (ip, why) in [
            ("10.21.0.1", "private 10.0.0.0/8"),
            ("10.19.255.255", "private 10.0.0.0/8"),
            ("fd13::1", "unique-local fc00::/7"),
            ("127.0.0.2", "loopback 127.0.0.0/8"),
            ("::1", "loopback ::1/128"),
            ("169.254.169.254", "link-local 169.254.0.0/16"),
        ] {
            assert_eq!(verdict(&operator, ip), Err(why.to_owned()), "{ip}");
        }
    }

    #[test]
    fn an_operator_range_with_host_bits_set_means_its_network() {
        let operator = policy(&["10.20.30.40/16"]);
        assert_eq!(verdict(&operator, "10.20.0.1"), Ok(()));
        assert!(verdict(&operator, "10.21.0.1").is_err());
    }

    #[test]
    fn an_entry_that_is_not_a_network_is_refused_with_the_entry_named() {
        for entry in ["10.0.0.0/33", "fd12::/129", "10.0.0/8", "example.com", "10.0.0.0/", "/8", "10.0.0.0/8/8"] {
            let error = AddressPolicy::parse(&["127.0.0.0/8".to_owned(), entry.to_owned()]).expect_err(entry);
            assert!(error.starts_with(&format!("`{entry}` is not a network: ")), "{error}");
        }
        assert_eq!(AddressPolicy::parse(&[]), Ok(AddressPolicy::strict()));
        assert_eq!(AddressPolicy::parse(&[" ".to_owned()]), Ok(AddressPolicy::strict()));
    }
}
