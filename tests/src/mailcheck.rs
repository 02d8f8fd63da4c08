//! Looking into the messages that arrived: headers, bodies and DKIM signatures.
//!
//! Parsing uses `mail-parser`; DKIM verification uses `mail-auth` (Stalwart's DKIM,
//! ARC, SPF and DMARC library, Apache-2.0/MIT) with the key record handed in by the
//! test instead of looked up in DNS: mail-auth answers TXT lookups from a caller's
//! cache first, and the cache here answers every lookup with that one record.
//!
//! The test keys ([`test_dkim_ed25519`], [`test_dkim_rsa`]) live in
//! `tests/fixtures/dkim/`, with a README saying how they were made.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use mail_parser::{Message, MessageParser, PartType};

/// Parses a raw RFC 5322 message.
///
/// # Panics
/// When mail-parser cannot make a message of it.
pub fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default()
        .parse(raw)
        .unwrap_or_else(|| panic!("not a parsable message: {}", String::from_utf8_lossy(raw)))
}

/// Every value of the top-level header `name` (case-insensitive), in order, as raw
/// text (no RFC 2047 decoding), unfolded (line breaks before whitespace removed) and
/// trimmed. Empty when the header is absent.
pub fn header(raw: &[u8], name: &str) -> Vec<String> {
    let message = parse(raw);
    message
        .headers()
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| {
            let value = &raw[h.offset_start as usize..h.offset_end as usize];
            unfold(&String::from_utf8_lossy(value))
        })
        .collect()
}

fn unfold(value: &str) -> String {
    value
        .replace("\r\n", "")
        .replace('\n', "")
        .trim()
        .to_owned()
}

/// The decoded `Subject`, if any.
pub fn subject(raw: &[u8]) -> Option<String> {
    parse(raw).subject().map(str::to_owned)
}

/// The first `text/plain` body part, decoded (charset and transfer encoding); empty
/// when the message has none (an HTML-only message is not converted to text).
pub fn text_body(raw: &[u8]) -> String {
    let message = parse(raw);
    message
        .text_body
        .iter()
        .filter_map(|&i| message.parts.get(i as usize))
        .find_map(|part| match &part.body {
            PartType::Text(text) => Some(text.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The first `text/html` body part, decoded; empty when the message has none (a
/// text-only message is not converted to HTML).
pub fn html_body(raw: &[u8]) -> String {
    let message = parse(raw);
    message
        .html_body
        .iter()
        .filter_map(|&i| message.parts.get(i as usize))
        .find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A DKIM key for tests: what lettre signs with and what DNS would publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDkimKey {
    /// For `lettre::message::dkim::DkimSigningKey::new(&key, algorithm)`: base64 of the
    /// 32-byte seed for Ed25519, a PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`) for RSA.
    pub private_key_for_lettre: String,
    /// The `selector._domainkey.domain` TXT record value (`v=DKIM1; k=...; p=...`).
    pub dns_txt: String,
}

/// A fixed Ed25519 key (RFC 8463; seed = SHA-256 of "assent-test-dkim-ed25519").
pub fn test_dkim_ed25519() -> TestDkimKey {
    TestDkimKey {
        private_key_for_lettre: include_str!("../fixtures/dkim/ed25519.key")
            .trim()
            .to_owned(),
        dns_txt: include_str!("../fixtures/dkim/ed25519.txt")
            .trim()
            .to_owned(),
    }
}

/// A fixed RSA 2048 key (generated once with `openssl genrsa -traditional 2048`).
pub fn test_dkim_rsa() -> TestDkimKey {
    TestDkimKey {
        private_key_for_lettre: include_str!("../fixtures/dkim/rsa2048.pem").to_owned(),
        dns_txt: include_str!("../fixtures/dkim/rsa2048.txt")
            .trim()
            .to_owned(),
    }
}

/// What a passing DKIM signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimVerified {
    /// The `h=` list, lowercased, in order.
    pub signed_headers: Vec<String>,
    /// `d=`
    pub domain: String,
    /// `s=`
    pub selector: String,
    /// `a=`, e.g. `ed25519-sha256`, `rsa-sha256`.
    pub algorithm: String,
    /// `c=`, e.g. `relaxed/relaxed`.
    pub canonicalization: String,
}

impl DkimVerified {
    /// Whether `h=` lists `name` (case-insensitive).
    pub fn signs(&self, name: &str) -> bool {
        self.signed_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Verifies every `DKIM-Signature` of `raw` against `dns_txt`, the TXT record that
/// DNS would publish for the signature's selector and domain (e.g.
/// `v=DKIM1; k=ed25519; p=...`); no DNS is asked. `Ok` describes the first signature
/// when all of them pass; `Err` says why not (no signature, a body hash mismatch, a bad
/// signature, an unusable record, ...).
pub fn verify_dkim(raw: &[u8], dns_txt: &str) -> Result<DkimVerified, String> {
    let raw = raw.to_vec();
    let dns_txt = dns_txt.to_owned();
    // mail-auth's verifier is async and wants a tokio runtime for its (never used)
    // resolver; a thread of its own keeps this callable from sync and async tests.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        runtime.block_on(verify_dkim_async(&raw, &dns_txt))
    })
    .join()
    .map_err(|_| "DKIM verification panicked".to_owned())?
}

async fn verify_dkim_async(raw: &[u8], dns_txt: &str) -> Result<DkimVerified, String> {
    let key = DomainKey::parse(dns_txt.as_bytes())
        .map_err(|e| format!("unusable DKIM key record {dns_txt:?}: {e:?}"))?;
    let cache = FixedTxt(Txt::DomainKey(Arc::new(key)));
    let message = AuthenticatedMessage::parse(raw).ok_or("not a parsable RFC 5322 message")?;
    if message.dkim_headers.is_empty() {
        return Err("no DKIM-Signature header".to_owned());
    }
    // Every TXT lookup is answered from `cache`; the resolver is never asked.
    let authenticator =
        MessageAuthenticator::new_cloudflare().map_err(|e| format!("resolver: {e}"))?;
    let outputs = authenticator
        .verify_dkim(Parameters::new(&message).with_txt_cache(&cache))
        .await;
    let mut first = None;
    for output in &outputs {
        if output.result() != &DkimResult::Pass {
            return Err(format!("DKIM {:?}", output.result()));
        }
        if first.is_none() {
            first = output.signature();
        }
    }
    let signature = first.ok_or("no verified DKIM signature")?;
    Ok(DkimVerified {
        signed_headers: signature.h.iter().map(|h| h.to_lowercase()).collect(),
        domain: signature.d.clone(),
        selector: signature.s.clone(),
        algorithm: match signature.a {
            mail_auth::common::crypto::Algorithm::RsaSha1 => "rsa-sha1",
            mail_auth::common::crypto::Algorithm::RsaSha256 => "rsa-sha256",
            mail_auth::common::crypto::Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
        .to_owned(),
        canonicalization: format!("{:?}/{:?}", signature.ch, signature.cb).to_lowercase(),
    })
}

/// A TXT "cache" that answers every name with one record.
struct FixedTxt(Txt);

impl ResolverCache<String, Txt> for FixedTxt {
    fn get<Q>(&self, _name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Some(self.0.clone())
    }

    fn remove<Q>(&self, _name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _key: String, _value: Txt, _valid_until: Instant) {}
}
