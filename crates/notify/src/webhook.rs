//! Delivering one webhook: a signed `POST` in the Standard Webhooks format (headers
//! `webhook-id`, `webhook-timestamp`, `webhook-signature`; see
//! [`assent_core::webhook`]), with failures classified for the retry schedule.

use assent_core::tenancy::InvalidValue;
use std::time::Duration;

/// The whole-request timeout of a delivery.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = "Assent-Webhooks/1";

/// The longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a delivery failed. The text says what happened, starting with `HTTP <status>`
/// when the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookFailure {
    /// The endpoint answered `410 Gone`: it asked us to stop; disable it.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Any other non-2xx answer, or a network error, timeout or refused connection:
    /// retry later.
    #[error("transient failure: {0}")]
    Transient(String),
}

impl WebhookFailure {
    /// The HTTP status the endpoint answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        let (WebhookFailure::Permanent(m) | WebhookFailure::Transient(m)) = self;
        m.strip_prefix("HTTP ")?.get(..3)?.parse().ok()
    }
}

/// Sends webhooks. Redirects are not followed (a 3xx is a failed delivery: the signed
/// request must reach the registered URL, and following redirects would let an endpoint
/// bounce our requests elsewhere).
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    allow_internal: bool,
}

impl WebhookSender {
    /// A sender that connects only to public addresses ([`is_internal_ip`]): a host
    /// name is resolved and only its public addresses are connected to, and a literal
    /// address goes through the same check before each delivery (a URL saved before a
    /// rule was added, or by an older version, is caught here too).
    pub fn new() -> Self {
        Self::build(false)
    }

    /// `allow_internal` lets deliveries reach internal addresses (tests, local
    /// development: `ASSENT_ALLOW_HTTP_WEBHOOKS`).
    pub fn build(allow_internal: bool) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT);
        if !allow_internal {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        let client = builder
            .build()
            .expect("a reqwest client with rustls builds");
        WebhookSender {
            client,
            allow_internal,
        }
    }

    /// Posts `payload` (JSON) to `url`, signed with `secret` (the raw bytes, see
    /// [`assent_core::webhook::parse_secret`]). `msg_id` stays the same across retries of
    /// one event; `timestamp` (seconds since the epoch) should be the time of this
    /// attempt. Returns the 2xx status on success.
    ///
    /// The URL is not validated here; check it with [`validate_url`] when it is saved.
    pub async fn deliver(
        &self,
        url: &str,
        secret: &[u8],
        msg_id: &str,
        timestamp: i64,
        payload: &[u8],
    ) -> Result<u16, WebhookFailure> {
        if !self.allow_internal {
            let parsed = url::Url::parse(url)
                .map_err(|e| WebhookFailure::Transient(format!("invalid URL: {e}")))?;
            if literal_ip(&parsed).is_some_and(is_internal_ip) || parsed.host().is_none() {
                return Err(WebhookFailure::Transient(
                    "refused: the webhook address is internal".into(),
                ));
            }
        }
        let signature = assent_core::webhook::sign(secret, msg_id, timestamp, payload);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(payload.to_vec())
            .send()
            .await
            .map_err(|e| WebhookFailure::Transient(describe(&e)))?;
        let status = response.status();
        // The body is not needed; dropping the response closes or recycles the connection.
        drop(response);
        classify_status(status.as_u16())
    }
}

impl Default for WebhookSender {
    fn default() -> Self {
        Self::new()
    }
}

/// 2xx is success, 410 Gone is permanent, anything else is transient.
pub fn classify_status(status: u16) -> Result<u16, WebhookFailure> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let text = format!("HTTP {status} {reason}").trim_end().to_owned();
    match status {
        200..=299 => Ok(status),
        410 => Err(WebhookFailure::Permanent(format!(
            "{text}: the endpoint asked to stop"
        ))),
        300..=399 => Err(WebhookFailure::Transient(format!(
            "{text} (redirects are not followed)"
        ))),
        _ => Err(WebhookFailure::Transient(text)),
    }
}

/// A short description of a request error without the URL (which may carry a
/// capability token chosen by the endpoint's owner).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request error"
    } else {
        "error"
    };
    let mut message = what.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Resolves host names like the system does, keeping only public addresses. The
/// connection goes to an address checked here, so a name cannot be re-pointed at the
/// internal network between a check and the connect (DNS rebinding).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<std::net::SocketAddr> = all
                .into_iter()
                .filter(|a| !is_internal_ip(a.ip()))
                .collect();
            if public.is_empty() {
                return Err("refused: the webhook host resolves only to internal addresses".into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// True for any address a tenant's endpoint must not be: loopback, private, shared
/// (CGNAT), link-local, benchmark, documentation, multicast, reserved, and IPv6
/// addresses that carry such an IPv4 address inside (mapped, compatible, NAT64,
/// 6to4) or reach one by tunnel (Teredo), site-local and unique local ones.
pub fn is_internal_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => is_internal_v4(v4),
        std::net::IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(v4: std::net::Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0 // "this network"
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
}

fn is_internal_v6(v6: std::net::Ipv6Addr) -> bool {
    use std::net::Ipv4Addr;
    let s = v6.segments();
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    // IPv4-compatible (`::a.b.c.d`, deprecated), `::1` and `::` among them.
    if s[..6] == [0; 6] {
        return true;
    }
    // NAT64: the well-known prefix carries the IPv4 address in its last 32 bits; the
    // local-use prefix is the installation's own translator.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_internal_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return true;
    }
    // 6to4: `2002:a.b.c.d::/48` reaches the IPv4 address through a relay.
    if s[0] == 0x2002 {
        return is_internal_v4(embedded(s[1], s[2]));
    }
    // Teredo (`2001::/32`) tunnels to an IPv4 address; `2001:db8::/32` is documentation.
    (s[0] == 0x2001 && (s[1] == 0 || s[1] == 0xdb8))
        || (s[0] == 0x100 && s[1..4] == [0; 3]) // discard
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed in places)
        || (s[0] & 0xff00) == 0xff00 // multicast
}

/// The literal address of a URL's host, if it is one.
fn literal_ip(url: &url::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(ip.into()),
        url::Host::Ipv6(ip) => Some(ip.into()),
        url::Host::Domain(_) => None,
    }
}

fn is_internal_host(url: &url::Url) -> bool {
    if let Some(ip) = literal_ip(url) {
        return is_internal_ip(ip);
    }
    match url.host() {
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal")
        }
        None => true,
    }
}

/// Checks a webhook endpoint URL: absolute, `https` (or `http` when `allow_http`, for
/// tests and local development), a host, no user name or password, no longer than
/// [`MAX_URL_LEN`] characters. Returns the parsed URL.
pub fn validate_url(url: &str, allow_http: bool) -> Result<url::Url, InvalidValue> {
    if url.len() > MAX_URL_LEN {
        return Err(InvalidValue(format!(
            "the webhook URL must be at most {MAX_URL_LEN} characters"
        )));
    }
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| InvalidValue(format!("the webhook URL is not a valid URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(InvalidValue("the webhook URL must use https".into()));
        }
        other => {
            return Err(InvalidValue(format!(
                "the webhook URL must use https, not {other}"
            )));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(InvalidValue("the webhook URL has no host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(InvalidValue(
            "the webhook URL must not contain a user name or password".into(),
        ));
    }
    // A tenant must not point deliveries (and their logged answers) at the
    // installation's own network. Names resolving there are not caught here (that
    // needs a check at connect time); literal addresses and localhost are.
    if !allow_http && is_internal_host(&parsed) {
        return Err(InvalidValue(
            "the webhook URL must point to a public host, not a loopback, private or link-local address".into(),
        ));
    }
    if parsed.as_str().len() > MAX_URL_LEN {
        return Err(InvalidValue(format!(
            "the webhook URL must be at most {MAX_URL_LEN} characters"
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    struct Received {
        request_line: String,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    /// A one-request HTTP server: reads one request and answers with `status`. It
    /// listens on the loopback, so senders here are built with `allow_internal`.
    async fn one_shot_server(
        status_line: &'static str,
        extra_headers: &'static str,
    ) -> (String, tokio::task::JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/assent", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut reader = BufReader::new(socket);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).await.unwrap();
            let mut headers = HashMap::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                if line == "\r\n" {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
            let len: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0; len];
            reader.read_exact(&mut body).await.unwrap();
            let response = format!(
                "HTTP/1.1 {status_line}\r\n{extra_headers}content-length: 2\r\nconnection: close\r\n\r\nok"
            );
            reader
                .get_mut()
                .write_all(response.as_bytes())
                .await
                .unwrap();
            reader.get_mut().shutdown().await.unwrap();
            Received {
                request_line: request_line.trim().to_owned(),
                headers,
                body,
            }
        });
        (url, handle)
    }

    fn secret() -> Vec<u8> {
        assent_core::webhook::parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[tokio::test]
    async fn a_delivery_is_signed_and_verifiable() {
        let (url, server) = one_shot_server("200 OK", "").await;
        let payload = r#"{"type":"consent.granted","data":{"subject":"Иван"}}"#.as_bytes();
        let now = chrono::Utc::now().timestamp();
        let status = WebhookSender::build(true)
            .deliver(&url, &secret(), "msg_0190abc", now, payload)
            .await
            .unwrap();
        assert_eq!(status, 200);

        let got = server.await.unwrap();
        assert_eq!(got.request_line, "POST /hooks/assent HTTP/1.1");
        assert_eq!(got.headers["content-type"], "application/json");
        assert_eq!(got.headers["user-agent"], USER_AGENT);
        assert_eq!(got.headers["webhook-id"], "msg_0190abc");
        assert_eq!(got.body, payload);
        let timestamp: i64 = got.headers["webhook-timestamp"].parse().unwrap();
        assert_eq!(timestamp, now);
        assert!(assent_core::webhook::verify(
            &secret(),
            &got.headers["webhook-id"],
            timestamp,
            &got.body,
            &got.headers["webhook-signature"],
            chrono::Utc::now().timestamp(),
            assent_core::webhook::DEFAULT_TOLERANCE_SECS,
        ));
        // A different secret does not verify.
        assert!(!assent_core::webhook::verify(
            &[0u8; 32],
            &got.headers["webhook-id"],
            timestamp,
            &got.body,
            &got.headers["webhook-signature"],
            now,
            300,
        ));
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused_at_connect_time() {
        // `localhost` resolves (from /etc/hosts) to the loopback the server listens on.
        let (url, server) = one_shot_server("200 OK", "").await;
        let by_name = url.replace("127.0.0.1", "localhost");
        let now = chrono::Utc::now().timestamp();
        let err = WebhookSender::new()
            .deliver(&by_name, &secret(), "msg_1", now, b"{}")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("internal addresses"), "{err}");
        assert!(!server.is_finished(), "nothing reached the internal server");
        // Allowed for local development, the same name is delivered to.
        let status = WebhookSender::build(true)
            .deliver(&by_name, &secret(), "msg_1", now, b"{}")
            .await
            .unwrap();
        assert_eq!(status, 200);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn gone_is_permanent() {
        let (url, _server) = one_shot_server("410 Gone", "").await;
        let err = WebhookSender::build(true)
            .deliver(&url, &secret(), "msg_1", 1, b"{}")
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookFailure::Permanent(_)), "{err:?}");
        assert_eq!(err.status(), Some(410));
    }

    #[tokio::test]
    async fn a_server_error_is_transient_with_its_status() {
        let (url, _server) = one_shot_server("503 Service Unavailable", "").await;
        let err = WebhookSender::build(true)
            .deliver(&url, &secret(), "msg_1", 1, b"{}")
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookFailure::Transient(_)), "{err:?}");
        assert_eq!(err.status(), Some(503));
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (url, _server) =
            one_shot_server("302 Found", "location: http://127.0.0.1:9/elsewhere\r\n").await;
        let err = WebhookSender::build(true)
            .deliver(&url, &secret(), "msg_1", 1, b"{}")
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookFailure::Transient(_)), "{err:?}");
        assert_eq!(err.status(), Some(302));
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient_without_status() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let err = WebhookSender::build(true)
            .deliver(
                &format!("http://127.0.0.1:{port}/"),
                &secret(),
                "m",
                1,
                b"{}",
            )
            .await
            .unwrap_err();
        assert!(matches!(err, WebhookFailure::Transient(_)), "{err:?}");
        assert_eq!(err.status(), None);
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status(200), Ok(200));
        assert_eq!(classify_status(204), Ok(204));
        assert_eq!(
            classify_status(410),
            Err(WebhookFailure::Permanent(
                "HTTP 410 Gone: the endpoint asked to stop".into()
            ))
        );
        for s in [301, 400, 401, 404, 429, 500, 502, 599] {
            let err = classify_status(s).unwrap_err();
            assert!(matches!(err, WebhookFailure::Transient(_)), "{s}");
            assert_eq!(err.status(), Some(s));
        }
    }

    #[test]
    fn urls_are_validated() {
        assert!(validate_url("https://hooks.example.org/assent?k=1", false).is_ok());
        assert!(validate_url("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(validate_url("http://127.0.0.1:8080/hook", false).is_err());
        assert!(validate_url("ftp://example.org/hook", true).is_err());
        assert!(validate_url("https://user:pass@example.org/hook", false).is_err());
        assert!(validate_url("https://user@example.org/hook", false).is_err());
        assert!(validate_url("/relative", false).is_err());
        assert!(validate_url("not a url", false).is_err());
        assert!(validate_url("file:///etc/passwd", true).is_err());
        let long = format!("https://example.org/{}", "a".repeat(MAX_URL_LEN));
        assert!(validate_url(&long, false).is_err());
        let just_right = format!("https://example.org/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(just_right.len(), MAX_URL_LEN);
        assert!(validate_url(&just_right, false).is_ok());
    }

    #[test]
    fn internal_addresses_are_refused_in_production() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.5/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://localhost/hook",
            "https://api.localhost/hook",
            "https://100.64.0.1/hook",
        ] {
            let err = validate_url(url, false).expect_err(url);
            assert!(err.0.contains("public host"), "{url}: {}", err.0);
        }
        assert!(validate_url("https://hooks.example.org/a", false).is_ok());
        assert!(validate_url("http://127.0.0.1:9000/hook", true).is_ok());
    }

    /// Addresses that reach the internal network in disguise (issue 15, hole 11).
    const DISGUISED: &[&str] = &[
        "64:ff9b::a9fe:a9fe",   // NAT64 of 169.254.169.254
        "::a9fe:a9fe",          // IPv4-compatible 169.254.169.254
        "2002:a9fe:a9fe::1",    // 6to4 of 169.254.169.254
        "::ffff:100.64.0.1",    // mapped CGNAT
        "198.18.0.1",           // benchmarking
        "fec0::1",              // site-local
        "::ffff:198.18.0.1",    // mapped benchmarking
        "64:ff9b::7f00:1",      // NAT64 of 127.0.0.1
        "64:ff9b::a00:1",       // NAT64 of 10.0.0.1
        "64:ff9b:1::a9fe:a9fe", // NAT64 local-use prefix
        "2002:7f00:1::",        // 6to4 of 127.0.0.1
        "2002:c0a8:101::1",     // 6to4 of 192.168.1.1
        "::7f00:1",             // IPv4-compatible loopback
        "2001:0:4136:e378::1",  // Teredo
        "2001:db8::1",          // documentation
        "ff02::1",              // multicast
        "fe80::1",              // link-local
        "fd12:3456::1",         // unique local
        "0.1.2.3",              // "this network"
        "192.0.0.8",            // IETF protocol assignments
        "192.0.2.1",            // documentation
        "224.0.0.1",            // multicast
        "240.0.0.1",            // reserved
        "198.19.255.255",       // benchmarking, upper end
    ];

    #[test]
    fn disguised_internal_addresses_are_refused() {
        for ip in DISGUISED {
            let parsed: std::net::IpAddr = ip.parse().expect(ip);
            assert!(is_internal_ip(parsed), "{ip} is internal");
            let host = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                (*ip).to_owned()
            };
            let err = validate_url(&format!("https://{host}/hook"), false).expect_err(ip);
            assert!(err.0.contains("public host"), "{ip}: {}", err.0);
        }
        // Public addresses, in any of these forms, stay allowed.
        for ip in [
            "93.184.215.14",
            "64:ff9b::5db8:d70e",
            "2002:5db8:d70e::1",
            "::ffff:93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "198.20.0.1",
            "100.128.0.1",
        ] {
            assert!(!is_internal_ip(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[tokio::test]
    async fn literal_internal_addresses_are_refused_at_delivery() {
        // A URL saved before a rule existed still goes through the check: nothing
        // connects (the listener would see it).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for host in ["127.0.0.1".to_owned(), "[::ffff:127.0.0.1]".to_owned()]
            .into_iter()
            .chain(DISGUISED.iter().map(|ip| {
                if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    (*ip).to_owned()
                }
            }))
        {
            let url = format!("http://{host}:{port}/hook");
            let err = WebhookSender::new()
                .deliver(&url, &secret(), "m", 1, b"{}")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("internal"), "{url}: {err}");
        }
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "nothing reached the internal listener");
    }
}
