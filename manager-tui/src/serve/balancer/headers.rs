//! The headers a request and its answer cross the balancer with. Workers learn the client's
//! address from `X-Forwarded-For` and `X-Real-IP`, so the balancer writes both itself: a
//! client's own values are dropped, never extended, and nothing it names in `Connection`
//! travels further.
use std::net::IpAddr;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION};

/// Headers that describe one hop and end at the balancer (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes the hop-by-hop headers, including those the sender listed in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// A request on its way to a worker: the client's address as the balancer saw it, whatever
/// the client claimed.
pub fn set_forwarded(headers: &mut HeaderMap, client: IpAddr) {
    strip_hop_by_hop(headers);
    headers.remove("forwarded");
    let ip = HeaderValue::from_str(&client.to_string()).expect("an address is a valid header");
    headers.insert(HeaderName::from_static("x-forwarded-for"), ip.clone());
    headers.insert(HeaderName::from_static("x-real-ip"), ip);
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_cannot_choose_its_address_or_smuggle_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.9.9.9"));
        h.insert("x-real-ip", HeaderValue::from_static("10.9.9.9"));
        h.insert("forwarded", HeaderValue::from_static("for=10.9.9.9"));
        h.insert("connection", HeaderValue::from_static("close, X-Secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("cookie", HeaderValue::from_static("session=abc"));
        set_forwarded(&mut h, "192.0.2.7".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-real-ip"], "192.0.2.7");
        assert!(h.get("forwarded").is_none());
        assert!(h.get("x-secret").is_none(), "named in Connection");
        assert!(h.get("connection").is_none());
        assert_eq!(h["cookie"], "session=abc", "end-to-end headers stay");
    }
}
