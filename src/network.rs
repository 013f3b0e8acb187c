//! Addresses and networks as the configuration names them (`auth.trusted_proxies`): a leaf
//! that the configuration (to check them) and the access rules (to match peers) both use.

use std::net::IpAddr;

/// An address or a network (`auth.trusted_proxies`): `10.0.0.0/8`, `172.17.0.1`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parse `ADDR` or `ADDR/PREFIX`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Network, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= bits => n,
                _ => return Err(format!("the prefix length must be 0 to {bits}, got {p:?}")),
            },
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let masked = |bits: u128, width: u32| {
            let host_bits = width - u32::from(self.prefix);
            bits.checked_shr(host_bits).unwrap_or(0)
        };
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32) == masked(u128::from(u32::from(ip)), 32)
            }
            // A v6 network written with mapped addresses (::ffff:10.0.0.0/104) holds v4 peers.
            (IpAddr::V6(net), IpAddr::V4(ip)) => {
                masked(u128::from(net), 128) == masked(u128::from(ip.to_ipv6_mapped()), 128)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(net), 128) == masked(u128::from(ip), 128),
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is (a dual-stack listener reports those).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_match() {
        let net = |t: &str| Network::parse(t).unwrap();
        assert!(net("10.0.0.0/8").contains("10.255.1.2".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(net("172.17.0.1").contains("172.17.0.1".parse().unwrap()));
        assert!(!net("172.17.0.1").contains("172.17.0.2".parse().unwrap()));
        assert!(net("0.0.0.0/0").contains("198.51.100.1".parse().unwrap()));
        assert!(net("fd00::/8").contains("fd12::1".parse().unwrap()));
        assert!(!net("fd00::/8").contains("fe80::1".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("fd00::1".parse().unwrap()), "families never mix");
        assert!(net("::ffff:10.0.0.0/104").contains("10.1.2.3".parse().unwrap()));
        assert!(!net("::ffff:10.0.0.0/104").contains("11.1.2.3".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "10.0.0.0/x", "fd00::/129", "example.org", "10.0.0.0/8/8"] {
            assert!(Network::parse(bad).is_err(), "{bad:?}");
        }
    }
}
