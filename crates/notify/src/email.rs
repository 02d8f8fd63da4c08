//! Composing and signing one email: a multipart/alternative message (text and HTML,
//! UTF-8) with a stable `Message-ID`, RFC 8058 one-click unsubscribe headers on
//! subscribed mail, and a DKIM signature added last. Also the classification of SMTP
//! failures into transient ones (retry) and permanent ones (a bounce).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{HeaderName, HeaderValue, MessageId};
use lettre::message::{Mailbox, MultiPart};

/// The name of the RFC 2369 unsubscribe header.
pub const LIST_UNSUBSCRIBE: &str = "List-Unsubscribe";
/// The name of the RFC 8058 one-click header.
pub const LIST_UNSUBSCRIBE_POST: &str = "List-Unsubscribe-Post";
/// The only value RFC 8058 allows for `List-Unsubscribe-Post`.
pub const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

/// The headers covered by the DKIM signature, in the order listed in `h=`.
///
/// The list is the same whether or not a header is present. RFC 6376 §5.4 lets a
/// signature name absent headers: they are hashed as empty, so adding one later (for
/// example a relay or an attacker adding a `List-Unsubscribe` to a transactional mail, or
/// a second `From`) breaks the signature. `List-Unsubscribe` and
/// `List-Unsubscribe-Post` must be signed for RFC 8058 one-click to be honoured.
///
/// `Content-Type` is deliberately absent: lettre writes a multipart message's
/// `Content-Type` with the body rather than into the message headers, so its DKIM code
/// would not hash it while a verifier would, and every signature would fail.
pub const DKIM_SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    LIST_UNSUBSCRIBE,
    LIST_UNSUBSCRIBE_POST,
];

/// Why an email could not be composed, or a DKIM key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("invalid DKIM configuration: {0}")]
    Dkim(String),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> EmailError {
    EmailError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Everything needed to compose one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailParts {
    /// A mailbox: `Name <address>` or a bare address; the name may be non-ASCII.
    pub from: String,
    /// A mailbox, as `from`.
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// A stable message id in the form `<id@domain>`, so a retried send is recognisable
    /// as the same message.
    pub message_id: String,
    /// Present on subscribed (non-transactional) mail.
    pub list_unsubscribe: Option<ListUnsubscribe>,
}

/// The targets of `List-Unsubscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe {
    /// The one-click URL, which receives `POST` with body `List-Unsubscribe=One-Click`.
    /// Must be `https://`.
    pub https_url: String,
    /// An optional mail target: `mailto:unsubscribe@example.org?subject=…` or a bare
    /// address (`mailto:` is then added).
    pub mailto: Option<String>,
}

/// Characters allowed inside `<…>` of a `List-Unsubscribe` URI: printable ASCII without
/// the delimiters of the header's list syntax. URLs built by us are percent-encoded, so
/// this only rejects mistakes and header injection.
fn valid_uri_text(uri: &str) -> bool {
    !uri.is_empty()
        && uri
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b',' | b'"'))
}

impl ListUnsubscribe {
    /// The header value: `<https://…>` or `<https://…>, <mailto:…>`.
    pub fn header_value(&self) -> Result<String, EmailError> {
        let https = self.https_url.trim();
        if !https
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
            || https.len() <= 8
        {
            return Err(invalid(
                "List-Unsubscribe URL",
                "one-click unsubscribe needs an https:// URL",
            ));
        }
        if !valid_uri_text(https) {
            return Err(invalid(
                "List-Unsubscribe URL",
                "it must be printable ASCII without spaces, '<', '>', ',' or '\"'",
            ));
        }
        let mut value = format!("<{https}>");
        if let Some(mailto) = &self.mailto {
            let mailto = mailto.trim();
            let uri = if mailto
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("mailto:"))
            {
                mailto.to_owned()
            } else {
                format!("mailto:{mailto}")
            };
            if !valid_uri_text(&uri) || !uri.contains('@') {
                return Err(invalid(
                    "List-Unsubscribe mailto",
                    "it must be a mailto: URI or an address in printable ASCII",
                ));
            }
            value.push_str(", <");
            value.push_str(&uri);
            value.push('>');
        }
        Ok(value)
    }
}

fn validate_message_id(id: &str) -> Result<(), EmailError> {
    let inner = id
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or_else(|| invalid("Message-ID", "it must be of the form <id@domain>"))?;
    let (left, right) = inner
        .split_once('@')
        .ok_or_else(|| invalid("Message-ID", "it must be of the form <id@domain>"))?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'@' | b'"' | b'\\' | b',')
            })
    };
    if ok(left) && ok(right) {
        Ok(())
    } else {
        Err(invalid(
            "Message-ID",
            "it must be <id@domain> in printable ASCII",
        ))
    }
}

/// Composes one message: multipart/alternative with the text part first and the HTML
/// part second (both UTF-8; lettre picks quoted-printable or base64 as needed), the given
/// `Message-ID`, and for subscribed mail exactly one `List-Unsubscribe` and
/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. When `dkim` is given the message
/// is signed last, after every header is set.
pub fn compose(parts: &EmailParts, dkim: Option<&Dkim>) -> Result<Message, EmailError> {
    let from: Mailbox = parts
        .from
        .parse()
        .map_err(|e| invalid("From", format!("{:?}: {e}", parts.from)))?;
    let to: Mailbox = parts
        .to
        .parse()
        .map_err(|e| invalid("To", format!("{:?}: {e}", parts.to)))?;
    validate_message_id(&parts.message_id)?;

    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(parts.subject.as_str())
        .header(MessageId::from(parts.message_id.clone()));
    if let Some(unsubscribe) = &parts.list_unsubscribe {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(LIST_UNSUBSCRIBE),
                unsubscribe.header_value()?,
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(LIST_UNSUBSCRIBE_POST),
                ONE_CLICK.to_owned(),
            ));
    }
    let mut message = builder.multipart(MultiPart::alternative_plain_html(
        parts.text.clone(),
        parts.html.clone(),
    ))?;
    if let Some(dkim) = dkim {
        message.sign(&dkim.config);
    }
    Ok(message)
}

/// A DKIM signing configuration: selector, domain and private key, signing
/// [`DKIM_SIGNED_HEADERS`] with relaxed/relaxed canonicalization (which survives the
/// header refolding and whitespace changes relays make).
///
/// Key formats accepted by [`Dkim::from_config`]:
/// - `rsa`: a PKCS#1 PEM key (`-----BEGIN RSA PRIVATE KEY-----`), the only RSA form
///   lettre reads. OpenSSL 3 writes PKCS#8 (`BEGIN PRIVATE KEY`) by default; convert
///   with `openssl rsa -in key.pem -traditional -out key.rsa.pem`, or generate with
///   `openssl genrsa -traditional 2048`. The DNS record is
///   `v=DKIM1; k=rsa; p=<base64 of the DER SubjectPublicKeyInfo>`
///   (`openssl rsa -in key.pem -pubout -outform DER | base64 -w0`).
/// - `ed25519`: the standard base64 (padded) of the 32-byte raw private key (the seed),
///   which is what lettre reads; a PKCS#8 PEM Ed25519 key as written by
///   `openssl genpkey -algorithm ed25519` is also accepted and converted. The DNS record
///   is `v=DKIM1; k=ed25519; p=<base64 of the 32-byte raw public key>`
///   (`openssl pkey -in key.pem -pubout -outform DER | tail -c 32 | base64`).
///   RFC 8463 recommends signing with both an RSA and an Ed25519 key, since not every
///   verifier knows Ed25519.
///
/// No public-key helper is provided: deriving the public key needs RSA or Ed25519 code
/// that this crate does not depend on directly.
pub struct Dkim {
    config: DkimConfig,
    selector: String,
    domain: String,
}

/// The DER prefix of a PKCS#8 Ed25519 private key (RFC 8410), followed by the 32-byte
/// seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn pem_body(pem: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    Some(pem[start..stop].split_whitespace().collect())
}

/// The Ed25519 key as lettre wants it: base64 of the 32-byte seed.
fn ed25519_seed_base64(private_key: &str) -> Result<String, EmailError> {
    let key = private_key.trim();
    if key.contains("-----BEGIN") {
        let body = pem_body(key, "PRIVATE KEY").ok_or_else(|| {
            EmailError::Dkim("an Ed25519 PEM key must be a PKCS#8 'PRIVATE KEY'".into())
        })?;
        let der = STANDARD
            .decode(body)
            .map_err(|_| EmailError::Dkim("the Ed25519 PEM key is not valid base64".into()))?;
        match der.strip_prefix(&ED25519_PKCS8_PREFIX[..]) {
            Some(seed) if seed.len() == 32 => Ok(STANDARD.encode(seed)),
            _ => Err(EmailError::Dkim(
                "the PEM key is not a PKCS#8 Ed25519 private key".into(),
            )),
        }
    } else {
        let seed = STANDARD.decode(key).map_err(|_| {
            EmailError::Dkim("an Ed25519 key must be the base64 of its 32 raw bytes".into())
        })?;
        if seed.len() != 32 {
            return Err(EmailError::Dkim(format!(
                "an Ed25519 key is 32 bytes; this one is {}",
                seed.len()
            )));
        }
        Ok(key.to_owned())
    }
}

fn valid_dns_label_text(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Shows the selector and domain only, never key material.
impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Dkim {
    /// Loads a key; see the type's documentation for the formats. `algorithm` is `rsa`
    /// or `ed25519` (case-insensitive).
    pub fn from_config(
        selector: &str,
        domain: &str,
        algorithm: &str,
        private_key: &str,
    ) -> Result<Dkim, EmailError> {
        if !valid_dns_label_text(selector) {
            return Err(EmailError::Dkim(format!(
                "the selector {selector:?} is not a DNS name"
            )));
        }
        if !valid_dns_label_text(domain) {
            return Err(EmailError::Dkim(format!(
                "the domain {domain:?} is not a DNS name"
            )));
        }
        let key = match algorithm.trim().to_ascii_lowercase().as_str() {
            "rsa" => {
                let pem = private_key.trim();
                if pem.contains("-----BEGIN PRIVATE KEY-----") {
                    return Err(EmailError::Dkim(
                        "the RSA key is PKCS#8 ('BEGIN PRIVATE KEY'); a PKCS#1 key \
                         ('BEGIN RSA PRIVATE KEY') is needed: convert it with \
                         `openssl rsa -in key.pem -traditional`"
                            .into(),
                    ));
                }
                DkimSigningKey::new(pem, DkimSigningAlgorithm::Rsa).map_err(|e| {
                    EmailError::Dkim(format!("the RSA key is not a PKCS#1 PEM private key ({e})"))
                })?
            }
            "ed25519" => {
                let seed = ed25519_seed_base64(private_key)?;
                DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519)
                    .map_err(|e| EmailError::Dkim(format!("the Ed25519 key is not valid ({e})")))?
            }
            other => {
                return Err(EmailError::Dkim(format!(
                    "unknown algorithm {other:?}; expected rsa or ed25519"
                )));
            }
        };
        let headers = DKIM_SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii((*h).to_owned()).expect("a valid header name"))
            .collect();
        let config = DkimConfig::new(
            selector.to_owned(),
            domain.to_owned(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(Dkim {
            config,
            selector: selector.to_owned(),
            domain: domain.to_owned(),
        })
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// The outcome of a failed send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Worth retrying later: a 4xx reply, a connection, TLS, timeout or I/O error, or a
    /// problem on our side (configuration, authentication).
    #[error("transient failure: {0}")]
    Transient(String),
    /// The server refused the message for good (a 5xx reply): a bounce.
    #[error("permanent failure: {message}")]
    Permanent { code: Option<u16>, message: String },
}

impl Failure {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Permanent { .. })
    }
}

/// 5xx replies that say our client or its configuration is wrong rather than that this
/// message or recipient is refused: retrying after the operator fixes it is right, and
/// counting them as bounces would mark every recipient as undeliverable.
/// 500–504: syntax / command not implemented / bad sequence; 530, 534, 535, 538:
/// authentication required, too weak, failed, or needs encryption (RFC 4954).
fn is_our_fault(code: u16) -> bool {
    matches!(code, 500..=504 | 530 | 534 | 535 | 538)
}

/// Classifies an SMTP error: 5xx replies are [`Failure::Permanent`] (a bounce), except
/// the ones meaning our side is misconfigured (see `is_our_fault`: 500–504, 530, 534,
/// 535, 538); 4xx replies, connection, TLS, timeout, I/O and protocol errors are
/// [`Failure::Transient`].
pub fn classify_smtp(err: &lettre::transport::smtp::Error) -> Failure {
    let code = err.status().map(u16::from);
    match code {
        Some(code) if err.is_permanent() && !is_our_fault(code) => Failure::Permanent {
            code: Some(code),
            message: err.to_string(),
        },
        _ => {
            let what = if err.is_timeout() {
                format!("timed out: {err}")
            } else {
                err.to_string()
            };
            Failure::Transient(what)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::AsyncTransport;
    use lettre::Tokio1Executor;
    use lettre::transport::smtp::AsyncSmtpTransport;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A fixed Ed25519 seed: base64 of 32 bytes 0x07.
    fn test_ed25519_key() -> String {
        STANDARD.encode([7u8; 32])
    }

    const TEST_RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQCeglH1RDrt8bESh1FetU7LruM1NYIyWL5Z7GToamaVbB/M9noE
W0m2dJMk7vpzTLBR/w67p2oOR1eO21g2arnPDWC6caucutWE5tpLWcujYzGzDzF+
e2KsADURmQ8SJD3IFIlyplBlIZyzUhtTYHaG5Ihni6w8pXmePfYk5aDRRQIDAQAB
AoGBAIlRzT72RTcuU4EByfSKjiDW+e9207xaNU4iBalzxDte2I3wWfS8QTfX9kHg
5whMP9RJarIXb0G/fJM+Y0WBYEYq8M9L9tSrUcgV2pEJqkngwanMO+sh2Ti7L4DL
5YsD/m4Vipa/Rbq20jZVcfBNLUP5m5qQ3ngW4XXZt6ILbDphAkEAzViugrz4Juih
qvgN8E5VHM4zkOu3e8mtABH3ddnClsf4hYDbvl48CBgmIUhaMcxP6eo/2zQPXGBY
g9lt9i39owJBAMWb7hSirFwOtRmakhbMZQ73fPpMBUSed6Pdbg+OhUrUWFMB5ZsX
4ejxduZoP2rqWEczHKGacMmUJZvlQW+6E/cCQG1CzYAk+kkBqNvmpswBcgoksY1f
zr5f/dw2sxwS5RYDivnGKaYuT/TinI9DBzLOCotlJ9sD5VR6sz5cl8TQjc8CQQCa
Gvl3hElQXXPkLMQDHZEuM9l2RPTSx5Zb52JepXHTonfi/Ba4dc6K4EwucVwLoAgK
NpT8fjm5KlyOECKQ5BePAkAp0C+eZ9pGWU8mfrFmqE06kKL4fpnB6yx0B94x2EJQ
q8ou0gt3en29uQZvtKSMconDOj30erH4SHNtMbJJHHLK
-----END RSA PRIVATE KEY-----";

    fn parts(unsubscribe: bool) -> EmailParts {
        EmailParts {
            from: "Сервис Ассент <noreply@example.org>".into(),
            to: "Иван Петров <ivan@example.net>".into(),
            subject: "Подтвердите согласие на рассылку".into(),
            text: "Здравствуйте, Иван! Подтвердите согласие: https://example.org/c/abc".into(),
            html: "<p>Здравствуйте, <b>Иван</b>!</p>".into(),
            message_id: "<n-0190a1b2c3d4@example.org>".into(),
            list_unsubscribe: unsubscribe.then(|| ListUnsubscribe {
                https_url: "https://example.org/u/tok_ABCdef-123?x=1".into(),
                mailto: Some("unsubscribe+tok_ABCdef-123@example.org".into()),
            }),
        }
    }

    fn formatted(message: &Message) -> String {
        String::from_utf8(message.formatted()).unwrap()
    }

    /// Unfolded header lines (continuations joined) of the top-level header block.
    fn header_lines(raw: &str) -> Vec<String> {
        let head = raw.split("\r\n\r\n").next().unwrap();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                lines.last_mut().unwrap().push_str(line);
            } else {
                lines.push(line.to_owned());
            }
        }
        lines
    }

    fn headers_named(raw: &str, name: &str) -> Vec<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        header_lines(raw)
            .into_iter()
            .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
            .collect()
    }

    /// Decodes the bodies of the leaf parts (base64 or quoted-printable).
    fn decoded_parts(raw: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for section in raw.split("\r\n--").skip(1) {
            let Some((head, body)) = section.split_once("\r\n\r\n") else {
                continue;
            };
            let head_lc = head.to_ascii_lowercase();
            let Some(ct) = head_lc
                .lines()
                .find_map(|l| l.strip_prefix("content-type: "))
                .map(|s| s.trim().to_owned())
            else {
                continue;
            };
            if ct.starts_with("multipart/") {
                continue;
            }
            let body = body.trim_end_matches(['\r', '\n']);
            let text = if head_lc.contains("content-transfer-encoding: base64") {
                let joined: String = body.split_whitespace().collect();
                String::from_utf8(STANDARD.decode(joined).unwrap()).unwrap()
            } else if head_lc.contains("content-transfer-encoding: quoted-printable") {
                let mut bytes = Vec::new();
                let unfolded = body.replace("=\r\n", "");
                let b = unfolded.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'=' && i + 2 < b.len() {
                        let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                        bytes.push(u8::from_str_radix(hex, 16).unwrap());
                        i += 3;
                    } else {
                        bytes.push(b[i]);
                        i += 1;
                    }
                }
                String::from_utf8(bytes).unwrap()
            } else {
                body.to_owned()
            };
            out.push((ct, text));
        }
        out
    }

    #[test]
    fn subscribed_mail_has_one_click_unsubscribe() {
        let message = compose(&parts(true), None).unwrap();
        let raw = formatted(&message);
        assert_eq!(
            headers_named(&raw, "List-Unsubscribe"),
            vec![
                "<https://example.org/u/tok_ABCdef-123?x=1>, \
                 <mailto:unsubscribe+tok_ABCdef-123@example.org>"
            ],
            "{raw}"
        );
        assert_eq!(
            headers_named(&raw, "List-Unsubscribe-Post"),
            vec!["List-Unsubscribe=One-Click"]
        );
        assert_eq!(
            headers_named(&raw, "Message-ID"),
            vec!["<n-0190a1b2c3d4@example.org>"]
        );
        assert_eq!(headers_named(&raw, "Date").len(), 1);
        assert!(
            headers_named(&raw, "Content-Type")[0].starts_with("multipart/alternative"),
            "{raw}"
        );
        // No raw Cyrillic in the headers: they are RFC 2047 encoded.
        assert!(raw.split("\r\n\r\n").next().unwrap().is_ascii());
    }

    #[test]
    fn the_mailto_is_optional() {
        let mut p = parts(true);
        p.list_unsubscribe.as_mut().unwrap().mailto = None;
        let raw = formatted(&compose(&p, None).unwrap());
        assert_eq!(
            headers_named(&raw, "List-Unsubscribe"),
            vec!["<https://example.org/u/tok_ABCdef-123?x=1>"]
        );
        p.list_unsubscribe.as_mut().unwrap().mailto = Some("mailto:u@example.org".into());
        let raw = formatted(&compose(&p, None).unwrap());
        assert_eq!(
            headers_named(&raw, "List-Unsubscribe"),
            vec!["<https://example.org/u/tok_ABCdef-123?x=1>, <mailto:u@example.org>"]
        );
    }

    #[test]
    fn transactional_mail_has_no_unsubscribe_headers() {
        let raw = formatted(&compose(&parts(false), None).unwrap());
        assert!(headers_named(&raw, "List-Unsubscribe").is_empty());
        assert!(headers_named(&raw, "List-Unsubscribe-Post").is_empty());
        assert!(!raw.contains("List-Unsubscribe"));
        assert_eq!(
            headers_named(&raw, "Message-ID"),
            vec!["<n-0190a1b2c3d4@example.org>"]
        );
    }

    #[test]
    fn both_parts_carry_the_russian_text_intact() {
        let p = parts(true);
        let raw = formatted(&compose(&p, None).unwrap());
        let decoded = decoded_parts(&raw);
        assert_eq!(decoded.len(), 2, "{raw}");
        assert_eq!(decoded[0].0, "text/plain; charset=utf-8");
        assert_eq!(decoded[0].1, p.text);
        assert_eq!(decoded[1].0, "text/html; charset=utf-8");
        assert_eq!(decoded[1].1, p.html);
    }

    #[test]
    fn the_message_is_addressed_to_the_recipient() {
        let message = compose(&parts(false), None).unwrap();
        let to: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(to, vec!["ivan@example.net"]);
        assert_eq!(
            message.envelope().from().unwrap().to_string(),
            "noreply@example.org"
        );
    }

    #[test]
    fn bad_values_are_rejected_before_sending() {
        let mut p = parts(true);
        p.list_unsubscribe.as_mut().unwrap().https_url = "http://example.org/u/x".into();
        assert!(compose(&p, None).is_err());

        let mut p = parts(true);
        p.list_unsubscribe.as_mut().unwrap().https_url =
            "https://example.org/u/x>\r\nBcc: victim@example.com".into();
        assert!(compose(&p, None).is_err());

        let mut p = parts(true);
        p.list_unsubscribe.as_mut().unwrap().mailto = Some("not an address".into());
        assert!(compose(&p, None).is_err());

        for id in ["n-1@example.org", "<n-1>", "<a b@c>", "<@c>", "<a@>"] {
            let mut p = parts(false);
            p.message_id = id.into();
            assert!(compose(&p, None).is_err(), "{id}");
        }

        let mut p = parts(false);
        p.to = "not an address".into();
        assert!(compose(&p, None).is_err());
    }

    #[test]
    fn a_newline_in_the_subject_cannot_inject_headers() {
        let mut p = parts(false);
        p.subject = "Hello\r\nBcc: victim@example.com".into();
        let raw = formatted(&compose(&p, None).unwrap());
        assert!(headers_named(&raw, "Bcc").is_empty(), "{raw}");
    }

    fn dkim_tags(raw: &str) -> Vec<(String, String)> {
        let sigs = headers_named(raw, "DKIM-Signature");
        assert_eq!(sigs.len(), 1, "{raw}");
        sigs[0]
            .split(';')
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_owned(),
                    v.split_whitespace().collect::<String>(),
                )
            })
            .collect()
    }

    fn tag<'a>(tags: &'a [(String, String)], name: &str) -> &'a str {
        &tags.iter().find(|(k, _)| k == name).unwrap().1
    }

    #[test]
    fn ed25519_dkim_signs_the_unsubscribe_headers() {
        let dkim =
            Dkim::from_config("s2025", "example.org", "ed25519", &test_ed25519_key()).unwrap();
        let raw = formatted(&compose(&parts(true), Some(&dkim)).unwrap());
        let tags = dkim_tags(&raw);
        assert_eq!(tag(&tags, "a"), "ed25519-sha256");
        assert_eq!(tag(&tags, "d"), "example.org");
        assert_eq!(tag(&tags, "s"), "s2025");
        assert_eq!(tag(&tags, "c"), "relaxed/relaxed");
        let signed: Vec<&str> = tag(&tags, "h").split(':').collect();
        for h in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert!(signed.contains(&h), "{h} not signed: {signed:?}");
        }
        assert!(!tag(&tags, "b").is_empty());
        assert!(!tag(&tags, "bh").is_empty());
        // Still exactly one of each unsubscribe header after signing.
        assert_eq!(headers_named(&raw, "List-Unsubscribe").len(), 1);
        assert_eq!(headers_named(&raw, "List-Unsubscribe-Post").len(), 1);
    }

    #[test]
    fn transactional_mail_is_signed_too() {
        let dkim = Dkim::from_config("s", "example.org", "ed25519", &test_ed25519_key()).unwrap();
        let raw = formatted(&compose(&parts(false), Some(&dkim)).unwrap());
        let tags = dkim_tags(&raw);
        // Absent headers are listed as well, so adding them later breaks the signature.
        assert!(tag(&tags, "h").contains("list-unsubscribe"));
    }

    #[test]
    fn rsa_dkim_signs() {
        let dkim = Dkim::from_config("rsa1", "example.org", "RSA", TEST_RSA_KEY).unwrap();
        let raw = formatted(&compose(&parts(true), Some(&dkim)).unwrap());
        let tags = dkim_tags(&raw);
        assert_eq!(tag(&tags, "a"), "rsa-sha256");
        assert!(tag(&tags, "h").contains("list-unsubscribe-post"));
    }

    #[test]
    fn dkim_configuration_errors_are_clear() {
        let pkcs8_rsa = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----";
        let err = Dkim::from_config("s", "example.org", "rsa", pkcs8_rsa).unwrap_err();
        assert!(err.to_string().contains("PKCS#1"), "{err}");
        assert!(Dkim::from_config("s", "example.org", "rsa", "garbage").is_err());
        assert!(Dkim::from_config("s", "example.org", "dsa", TEST_RSA_KEY).is_err());
        assert!(Dkim::from_config("s", "example.org", "ed25519", "AAAA").is_err());
        assert!(Dkim::from_config("s", "example.org", "ed25519", "not base64!").is_err());
        assert!(Dkim::from_config("", "example.org", "ed25519", &test_ed25519_key()).is_err());
        assert!(Dkim::from_config("s", "exa mple.org", "ed25519", &test_ed25519_key()).is_err());
    }

    #[test]
    fn a_pkcs8_ed25519_pem_key_is_converted_to_the_raw_seed() {
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&[7u8; 32]);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        assert_eq!(ed25519_seed_base64(&pem).unwrap(), test_ed25519_key());
        assert!(Dkim::from_config("s", "example.org", "ed25519", &pem).is_ok());
        // An RSA PKCS#8 key under the Ed25519 algorithm is refused.
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
        assert!(ed25519_seed_base64(pem).is_err());
    }

    /// A scripted SMTP server for one connection: answers the greeting, EHLO and each
    /// command in turn, replying `reject` to `RCPT TO` when given.
    async fn fake_smtp(reject_rcpt: Option<&'static str>) -> (u16, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                if in_data {
                    if line == "." {
                        in_data = false;
                        write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                    }
                    continue;
                }
                let upper = line.to_ascii_uppercase();
                let reply: &str = if upper.starts_with("EHLO") {
                    "250-fake\r\n250 8BITMIME\r\n"
                } else if upper.starts_with("RCPT") {
                    reject_rcpt.unwrap_or("250 2.1.5 ok\r\n")
                } else if upper.starts_with("DATA") {
                    in_data = true;
                    "354 go ahead\r\n"
                } else if upper.starts_with("QUIT") {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    break;
                } else {
                    "250 ok\r\n"
                };
                if write.write_all(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        (port, handle)
    }

    async fn send_via(port: u16) -> Result<(), lettre::transport::smtp::Error> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .timeout(Some(std::time::Duration::from_secs(5)))
            .build();
        transport
            .send(compose(&parts(false), None).unwrap())
            .await
            .map(|_| ())
    }

    #[tokio::test]
    async fn a_5xx_recipient_rejection_is_permanent() {
        let (port, _server) = fake_smtp(Some("550 5.1.1 no such user\r\n")).await;
        let err = send_via(port).await.unwrap_err();
        match classify_smtp(&err) {
            Failure::Permanent { code, message } => {
                assert_eq!(code, Some(550));
                assert!(message.contains("no such user"), "{message}");
            }
            other => panic!("expected permanent, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_4xx_reply_is_transient() {
        let (port, _server) = fake_smtp(Some("451 4.7.1 greylisted, try later\r\n")).await;
        let err = send_via(port).await.unwrap_err();
        let failure = classify_smtp(&err);
        assert!(
            matches!(failure, Failure::Transient(ref m) if m.contains("greylisted")),
            "{failure:?}"
        );
    }

    #[tokio::test]
    async fn an_authentication_failure_is_not_a_bounce() {
        let (port, _server) = fake_smtp(Some("535 5.7.8 authentication failed\r\n")).await;
        let err = send_via(port).await.unwrap_err();
        assert!(!classify_smtp(&err).is_permanent());
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        // Bind and drop to get a port that is (almost certainly) closed.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let err = send_via(port).await.unwrap_err();
        assert!(matches!(classify_smtp(&err), Failure::Transient(_)));
    }

    #[tokio::test]
    async fn an_accepted_message_is_ok() {
        let (port, _server) = fake_smtp(None).await;
        send_via(port).await.unwrap();
    }
}
