//! Who is on the other end of a request, as far as it can be trusted.
//!
//! `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto` and `Forwarded`
//! say where a request really came from, but anyone can send them. They
//! count only when the request comes from a proxy listed in
//! `--trusted-proxies`; from anyone else they are ignored, so a client can
//! neither pass the Origin check nor dodge per-address limits with them.
//!
//! The client's address comes from `X-Forwarded-For` alone, read from the
//! right: proxies append the address they received from, so the rightmost
//! entry that is not itself a trusted proxy is the client. Entries further
//! left were written by the client and are not believed.

use std::net::IpAddr;

use actix_web::dev::ConnectionInfo;
use actix_web::http::header;
use actix_web::HttpRequest;

use crate::ipnet::{canonical, IpNet};

/// The proxies whose forwarding headers are believed, and whether Parlor
/// itself serves TLS (then a request that came straight in used HTTPS).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    tls: bool,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, tls: bool) -> Self {
        Self { nets, tls }
    }

    fn trust(&self, req: &HttpRequest) -> Option<ConnectionInfo> {
        self.trusts(req.peer_addr()?.ip()).then(|| req.connection_info().clone())
    }

    /// The client's address: the socket's peer, or what a trusted proxy
    /// says it forwarded for.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = canonical(req.peer_addr()?.ip());
        if !self.trusts(peer) {
            return Some(peer);
        }
        // Every value of every X-Forwarded-For header, in order.
        let hops: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_ip(hop) {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return Some(ip),
                // Garbage: nothing to its left can be believed either.
                None => break,
            }
        }
        Some(client)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }

    /// Whether the request comes from this machine itself, not through a
    /// proxy on it: from loopback, not from a configured proxy, and naming
    /// no client of its own (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`),
    /// which a proxy that is not configured may still send.
    pub fn is_local(&self, req: &HttpRequest) -> bool {
        let proxied = ["x-forwarded-for", "forwarded", "x-real-ip"].iter().any(|h| req.headers().contains_key(*h));
        let peer = req.peer_addr().map(|a| canonical(a.ip()));
        !proxied && peer.is_some_and(|ip| ip.is_loopback() && !self.trusts(ip))
    }

    /// The host the client asked for: its `Host` header, or what a trusted
    /// proxy says it forwarded.
    pub fn host(&self, req: &HttpRequest) -> String {
        if let Some(info) = self.trust(req) {
            return info.host().to_string();
        }
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
        host.or_else(|| req.uri().authority().map(|a| a.as_str())).unwrap_or("").to_string()
    }

    /// Whether the client used HTTPS (so cookies can be `Secure`).
    pub fn https(&self, req: &HttpRequest) -> bool {
        self.scheme(req).eq_ignore_ascii_case("https")
    }

    /// `https` or `http`, as the client used it.
    fn scheme(&self, req: &HttpRequest) -> String {
        // Serving TLS, every request reached Parlor over it, proxied or not.
        if self.tls {
            return "https".to_string();
        }
        match self.trust(req) {
            Some(info) => info.scheme().to_string(),
            None => "http".to_string(),
        }
    }
}

/// `203.0.113.7`, `203.0.113.7:5000`, `[2001:db8::1]:80` or `2001:db8::1`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    text.parse::<std::net::SocketAddr>().ok().map(|a| canonical(a.ip()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()], false);
        let via = |peer: &str, forwarded: &str| {
            TestRequest::default()
                .peer_addr(peer.parse().unwrap())
                .insert_header(("X-Forwarded-For", forwarded))
                .to_http_request()
        };
        // The client wrote 1.2.3.4 itself; the proxies saw 203.0.113.9.
        assert_eq!(proxies.client_ip(&via("10.0.0.5:80", "1.2.3.4, 203.0.113.9, 10.0.0.7")), ip("203.0.113.9"));
        // Only proxies: the leftmost of them.
        assert_eq!(proxies.client_ip(&via("10.0.0.5:80", "10.0.0.9")), ip("10.0.0.9"));
        // Garbage stops the walk at the last hop believed.
        assert_eq!(proxies.client_ip(&via("10.0.0.5:80", "203.0.113.9, unknown")), ip("10.0.0.5"));
        // From anyone else, the header is ignored.
        assert_eq!(proxies.client_ip(&via("198.51.100.1:80", "1.2.3.4")), ip("198.51.100.1"));
    }
}
