//! The network a client is counted as, where one client's share is limited (wrong passwords
//! on a worker, code requests at the control plane): stepping through one's own addresses
//! must not buy more. An IPv6 client is its /64 (what one household or machine is usually
//! given), an IPv4 client the prefix the caller chooses, loopback one network whatever the
//! address, and an IPv4-mapped IPv6 address its IPv4 one.
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// `ip`'s network, as its first address; `ipv4_prefix` is at most 32.
pub fn client_network(ip: IpAddr, ipv4_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(v4) => IpAddr::V4(
            Ipv4Net::new(v4, ipv4_prefix)
                .expect("an IPv4 prefix is at most 32")
                .trunc()
                .addr(),
        ),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => client_network(IpAddr::V4(v4), ipv4_prefix),
            None => IpAddr::V6(Ipv6Net::new(v6, 64).expect("64 ≤ 128").trunc().addr()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let net = |s: &str, prefix| client_network(s.parse().unwrap(), prefix).to_string();
        assert_eq!(net("127.4.5.6", 32), "127.0.0.1");
        assert_eq!(net("127.4.5.6", 24), "127.0.0.1");
        assert_eq!(net("192.0.2.7", 32), "192.0.2.7");
        assert_eq!(net("192.0.2.7", 24), "192.0.2.0");
        assert_eq!(net("2001:db8:1:2:3:4:5:6", 32), "2001:db8:1:2::");
        assert_eq!(net("::ffff:192.0.2.7", 24), "192.0.2.0");
    }
}
