//! Signing of outgoing webhooks in the Standard Webhooks format
//! (<https://www.standardwebhooks.com/>), so a receiver can verify them with any of the
//! standard libraries (`standardwebhooks`, `svix`, …).
//!
//! - The secret is shown to the user as `whsec_<base64 of the raw secret bytes>`.
//! - The signed content is `{webhook-id}.{webhook-timestamp}.{payload}`.
//! - The `webhook-signature` header is `v1,<base64(HMAC-SHA256(secret, content))>`; a
//!   receiver accepts a space-separated list of such signatures (key rotation).

use crate::tenancy::InvalidValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// The signature scheme version this module produces and verifies.
pub const SIGNATURE_VERSION: &str = "v1";

/// The smallest secret accepted, in bytes (the specification recommends 24 to 64).
pub const MIN_SECRET_LEN: usize = 24;

/// The largest secret accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 64;

/// The replay window receivers are advised to use (the reference libraries use 5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

/// The text form of a secret: `whsec_` and the standard (padded) base64 of the bytes.
pub fn secret_string(raw: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(raw))
}

/// Reads a secret in its text form. The `whsec_` prefix is optional, as in the reference
/// implementations; the rest must be standard base64 of 24 to 64 bytes.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, InvalidValue> {
    let s = s.trim();
    let encoded = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
    let raw = STANDARD.decode(encoded).map_err(|_| {
        InvalidValue("the webhook secret must be 'whsec_' followed by base64".into())
    })?;
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&raw.len()) {
        return Err(InvalidValue(format!(
            "the webhook secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes; it is {}",
            raw.len()
        )));
    }
    Ok(raw)
}

fn mac(secret: &[u8], msg_id: &str, timestamp: i64, payload: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// The `webhook-signature` header value for one message: `v1,<base64>`.
///
/// `timestamp` is in seconds since the Unix epoch and must be the value sent in the
/// `webhook-timestamp` header; `payload` is the exact body sent.
pub fn sign(secret: &[u8], msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
    format!(
        "{SIGNATURE_VERSION},{}",
        STANDARD.encode(mac(secret, msg_id, timestamp, payload))
    )
}

/// Verifies a `webhook-signature` header (one or more space-separated `v1,<base64>`
/// entries; entries of other versions are ignored) against the message, and that
/// `timestamp` lies within `tolerance_secs` of `now` in either direction.
///
/// The signatures are compared in constant time.
pub fn verify(
    secret: &[u8],
    msg_id: &str,
    timestamp: i64,
    payload: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> bool {
    let within_tolerance = now
        .checked_sub(timestamp)
        .is_some_and(|age| age.checked_abs().is_some_and(|a| a <= tolerance_secs));
    if !within_tolerance {
        return false;
    }
    let expected = mac(secret, msg_id, timestamp, payload);
    let mut found = false;
    for entry in header.split_ascii_whitespace() {
        let Some((version, signature)) = entry.split_once(',') else {
            continue;
        };
        if version != SIGNATURE_VERSION {
            continue;
        }
        let Ok(candidate) = STANDARD.decode(signature) else {
            continue;
        };
        // `ct_eq` on slices of different lengths is false without looking at the bytes.
        found |= bool::from(candidate.as_slice().ct_eq(&expected));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn secret() -> Vec<u8> {
        (0u8..32).collect()
    }

    /// The vector of the Standard Webhooks reference libraries (and Svix's), which
    /// proves interoperability rather than self-consistency.
    #[test]
    fn reproduces_the_reference_test_vectors() {
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // standard-webhooks/libraries/rust `test_sign`.
        let key = parse_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn the_reference_vector_verifies_even_among_other_signatures() {
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let header = "v2,abc v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
            header,
            1614265330,
            DEFAULT_TOLERANCE_SECS,
        ));
    }

    #[test]
    fn secrets_round_trip_through_their_text_form() {
        let raw = secret();
        let text = secret_string(&raw);
        assert!(text.starts_with("whsec_"));
        assert_eq!(parse_secret(&text).unwrap(), raw);
        // The prefix is optional, as in the reference libraries.
        assert_eq!(parse_secret(&text["whsec_".len()..]).unwrap(), raw);
    }

    #[test]
    fn bad_secrets_are_rejected() {
        assert!(parse_secret("whsec_not base64!").is_err());
        assert!(parse_secret(&secret_string(&[1u8; 8])).is_err());
        assert!(parse_secret(&secret_string(&[1u8; 65])).is_err());
        assert!(parse_secret("").is_err());
    }

    #[test]
    fn a_signature_verifies() {
        let header = sign(&secret(), "msg_1", NOW, b"{}");
        assert!(verify(&secret(), "msg_1", NOW, b"{}", &header, NOW, 300));
    }

    #[test]
    fn any_flipped_bit_of_the_signature_fails() {
        let header = sign(&secret(), "msg_1", NOW, b"{\"a\":1}");
        let raw = STANDARD.decode(&header[3..]).unwrap();
        for i in 0..raw.len() * 8 {
            let mut flipped = raw.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let bad = format!("v1,{}", STANDARD.encode(&flipped));
            assert!(!verify(
                &secret(),
                "msg_1",
                NOW,
                b"{\"a\":1}",
                &bad,
                NOW,
                300
            ));
        }
    }

    #[test]
    fn any_flipped_bit_of_the_payload_id_or_secret_fails() {
        let payload = b"{\"event\":\"consent.granted\"}".to_vec();
        let header = sign(&secret(), "msg_1", NOW, &payload);
        for i in 0..payload.len() * 8 {
            let mut flipped = payload.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            assert!(!verify(
                &secret(),
                "msg_1",
                NOW,
                &flipped,
                &header,
                NOW,
                300
            ));
        }
        assert!(!verify(
            &secret(),
            "msg_2",
            NOW,
            &payload,
            &header,
            NOW,
            300
        ));
        let mut other = secret();
        other[0] ^= 1;
        assert!(!verify(&other, "msg_1", NOW, &payload, &header, NOW, 300));
        // The timestamp is signed too.
        assert!(!verify(
            &secret(),
            "msg_1",
            NOW + 1,
            &payload,
            &header,
            NOW,
            300
        ));
    }

    #[test]
    fn the_timestamp_must_be_within_the_tolerance() {
        for (ts, ok) in [
            (NOW, true),
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
            (i64::MIN, false),
            (i64::MAX, false),
        ] {
            let header = sign(&secret(), "msg_1", ts, b"{}");
            assert_eq!(
                verify(&secret(), "msg_1", ts, b"{}", &header, NOW, 300),
                ok,
                "timestamp {ts}"
            );
        }
    }

    #[test]
    fn malformed_headers_fail() {
        for header in ["", "v1,", "v1", "g0hM9SsE", "v2,AAAA", "v1,!!!", "   "] {
            assert!(!verify(&secret(), "msg_1", NOW, b"{}", header, NOW, 300));
        }
        // A truncated signature (a prefix of the right one) must not pass.
        let header = sign(&secret(), "msg_1", NOW, b"{}");
        let raw = STANDARD.decode(&header[3..]).unwrap();
        let short = format!("v1,{}", STANDARD.encode(&raw[..16]));
        assert!(!verify(&secret(), "msg_1", NOW, b"{}", &short, NOW, 300));
    }
}
