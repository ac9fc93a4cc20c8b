//! Who is on the other end of a request, as far as it can be trusted.
//!
//! `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto` and `Forwarded`
//! say where a request really came from, but anyone can send them. They
//! count only when the request comes from a proxy listed in
//! `--trusted-proxies`; from anyone else they are ignored, so a client can
//! neither pass the Origin check nor dodge per-address limits with them.

use std::net::IpAddr;

use actix_web::dev::ConnectionInfo;
use actix_web::http::header;
use actix_web::HttpRequest;

use crate::ipnet::{canonical, IpNet};

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trust(&self, req: &HttpRequest) -> Option<ConnectionInfo> {
        let peer = req.peer_addr()?.ip();
        self.0.iter().any(|net| net.contains(peer)).then(|| req.connection_info().clone())
    }

    /// The client's address: the socket's peer, or what a trusted proxy
    /// says it forwarded for.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let forwarded = self.trust(req).and_then(|info| parse_ip(info.realip_remote_addr()?));
        forwarded.or_else(|| req.peer_addr().map(|a| canonical(a.ip())))
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
        self.scheme(req) == "https"
    }

    /// `https` or `http`, as the client used it.
    fn scheme(&self, req: &HttpRequest) -> String {
        match self.trust(req) {
            Some(info) => info.scheme().to_string(),
            None if req.app_config().secure() => "https".to_string(),
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
