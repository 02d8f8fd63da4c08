//! Per-IP rate limits of the public pages (GCRA, from the `governor` crate).
//!
//! The pages need no login, so a limit per client address is what stands between
//! them and someone trying tokens or hammering the database. Behind a reverse proxy
//! the peer is the proxy; `trust_forwarded_for` makes the limiter use the client
//! address the proxy appended to `X-Forwarded-For` instead (only safe when every
//! request comes through it). IPv6 clients are keyed by their /64: one host usually
//! holds the whole prefix.

use actix_web::HttpRequest;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

pub struct PublicRateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trust_forwarded_for: bool,
}

impl PublicRateLimit {
    /// `per_minute` requests per client address, with the same burst.
    pub fn new(per_minute: u32, trust_forwarded_for: bool) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            trust_forwarded_for,
        }
    }

    /// The client's address: the peer, or behind a trusted proxy the address that
    /// proxy appended to `X-Forwarded-For` (the rightmost entry; the ones before it
    /// came from the client and prove nothing).
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(ip) = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last()
                .and_then(|a| a.trim().parse::<IpAddr>().ok())
        {
            return Some(ip);
        }
        req.peer_addr().map(|a| a.ip())
    }

    /// `Err(wait)` when this client must slow down.
    pub fn check(&self, req: &HttpRequest) -> Result<(), Duration> {
        let Some(ip) = self.client(req).map(prefix) else {
            return Ok(());
        };
        // Forget idle clients now and then so the map stays small.
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(self.limiter.clock()))
        })
    }
}

/// IPv4 as is; IPv6 reduced to its /64.
fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn behind_a_proxy_the_rightmost_forwarded_address_counts() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "1.2.3.4, 203.0.113.9"))
            .insert_header(("forwarded", "for=5.6.7.8"))
            .to_http_request();
        let trusting = PublicRateLimit::new(5, true);
        assert_eq!(trusting.client(&req), Some("203.0.113.9".parse().unwrap()));
        let direct = PublicRateLimit::new(5, false);
        assert_eq!(direct.client(&req), Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(prefix(a), prefix(b));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(prefix(v4), v4);
    }
}
