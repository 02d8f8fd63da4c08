//! Per-IP rate limits of the public pages (GCRA, from the `governor` crate).
//!
//! The pages need no login, so a limit per client address is what stands between
//! them and someone trying tokens or hammering the database. Behind a reverse proxy
//! the peer is the proxy; `trust_forwarded_for` makes the limiter use the client
//! address the proxy reports instead (only safe when every request comes through it).

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

    fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(ip) = req
                .connection_info()
                .realip_remote_addr()
                .and_then(|a| a.parse::<IpAddr>().ok())
        {
            return Some(ip);
        }
        req.peer_addr().map(|a| a.ip())
    }

    /// `Err(wait)` when this client must slow down.
    pub fn check(&self, req: &HttpRequest) -> Result<(), Duration> {
        let Some(ip) = self.client(req) else {
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
