//! Who sent a request: the peer, or the client the deployment's balancer says it forwarded.
//! Rocket's own `X-Real-IP` handling is off (it believes the header from anyone); the
//! address is only taken from `X-Forwarded-For` when the peer is a trusted proxy, and then
//! from its right end, the entry that proxy wrote itself.
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr};

use rocket::request::{FromRequest, Outcome, Request};

use crate::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn of(req: &Request<'_>, trusted: &[ipnet::IpNet]) -> ClientAddr {
        let peer = req
            .remote()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        if !trusted.iter().any(|net| net.contains(&peer)) {
            return ClientAddr(peer);
        }
        let forwarded = req
            .headers()
            .get("X-Forwarded-For")
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|ip| ip.trim().parse().ok());
        ClientAddr(forwarded.unwrap_or(peer))
    }

    /// The network its wrong passwords are counted against: one IPv4 address (they are
    /// scarce, and a NAT is many people), an IPv6 /64.
    pub fn network(self) -> IpAddr {
        common::network::client_network(self.0, 32)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientAddr {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        let trusted = req
            .rocket()
            .state::<AppState>()
            .map(|s| s.config.trusted_proxies.as_slice())
            .unwrap_or(&[]);
        Outcome::Success(ClientAddr::of(req, trusted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let net = |s: &str| ClientAddr(s.parse().unwrap()).network().to_string();
        assert_eq!(net("127.4.5.6"), "127.0.0.1");
        assert_eq!(net("192.0.2.7"), "192.0.2.7");
        assert_eq!(net("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7");
    }
}
