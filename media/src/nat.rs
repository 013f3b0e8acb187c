//! Which announced address a packet "arrived at", as str0m must see it.
//!
//! str0m (ICE-lite) answers a connectivity check only when its destination is one of the local
//! host candidates, and it refuses server-reflexive local candidates in ICE-lite mode. A server
//! behind a 1:1 NAT (most clouds) binds a private address and announces its public one; a
//! server bound to a wildcard cannot tell the destination at all. In both cases the worker
//! presents each packet as sent to the announced address of its family, which is the candidate
//! the client used: that is the "server-reflexive address with the bound address as its base",
//! expressed as a host candidate plus this mapping.

use std::net::{IpAddr, SocketAddr};

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, from a dual-stack socket)
/// turned into plain IPv4, the way the browser named itself in its candidates.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The local candidate address a packet from `source` to a socket bound at `bound` was sent
/// to: the bound address when it is announced itself, else the first announced address of
/// the source's family (wildcard bind, or a private address behind a 1:1 NAT).
pub(crate) fn candidate_addr(bound: SocketAddr, announce: &[IpAddr], source: SocketAddr) -> SocketAddr {
    let ip = if announce.contains(&bound.ip()) {
        bound.ip()
    } else {
        announce.iter().find(|ip| ip.is_ipv4() == source.is_ipv4()).copied().unwrap_or(bound.ip())
    };
    SocketAddr::new(ip, bound.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn maps_to_the_announced_candidate() {
        let public: IpAddr = "198.51.100.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        // Bound to an announced address: unchanged.
        assert_eq!(
            candidate_addr(a("10.0.0.5:50000"), &["10.0.0.5".parse().unwrap()], a("1.2.3.4:9")),
            a("10.0.0.5:50000")
        );
        // 1:1 NAT: bound private, announced public.
        assert_eq!(candidate_addr(a("10.0.0.5:50000"), &[public], a("1.2.3.4:9")), a("198.51.100.7:50000"));
        // Wildcard, both families announced: by the source's family.
        let wild = a("[::]:50000");
        assert_eq!(candidate_addr(wild, &[v6, public], a("1.2.3.4:9")), a("198.51.100.7:50000"));
        assert_eq!(candidate_addr(wild, &[public, v6], a("[2001:db8::9]:9")), a("[2001:db8::1]:50000"));
        // Nothing of that family announced: the bound address (str0m will then ignore checks).
        assert_eq!(candidate_addr(a("0.0.0.0:5"), &[v6], a("1.2.3.4:9")), a("0.0.0.0:5"));
    }

    #[test]
    fn mapped_v4_becomes_v4() {
        assert_eq!(canonical(a("[::ffff:192.0.2.1]:7")), a("192.0.2.1:7"));
        assert_eq!(canonical(a("[2001:db8::1]:7")), a("[2001:db8::1]:7"));
    }
}
