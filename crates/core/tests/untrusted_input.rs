//! Property tests of the verifiers that face the internet: link tokens (`/u`, `/p`,
//! `/s`, `/x`) and access tokens. Whatever arrives, they answer with an
//! error, never a panic, and accept only what this installation signed.
//! `PROPTEST_CASES` overrides the number of cases (256 by default).

use assent_core::access_token::{AccessTokens, TokenError};
use assent_core::crypto::{MasterKey, b64url};
use assent_core::link::{ExportClaims, LinkClaims, LinkKeys, LinkKind, SurveyClaims};
use assent_core::tenancy::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use uuid::Uuid;

fn link_keys() -> LinkKeys {
    LinkKeys::new(&MasterKey::from_bytes([7; 32]), 2, &[1])
}

fn access_tokens() -> AccessTokens {
    AccessTokens::new(
        &MasterKey::from_bytes([3; 32]),
        "https://assent.test",
        "assent-api",
        900,
        "k1",
        &[],
    )
}

fn id() -> impl Strategy<Value = String> {
    any::<[u8; 16]>().prop_map(|b| Uuid::from_bytes(b).hyphenated().to_string())
}

fn purpose() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9_.-]{1,64}")
}

fn link_claims() -> impl Strategy<Value = LinkClaims> {
    (
        prop_oneof![Just(LinkKind::Unsubscribe), Just(LinkKind::Preferences)],
        id(),
        id(),
        purpose(),
    )
        .prop_map(|(kind, tenant_id, subject_id, purpose)| LinkClaims {
            kind,
            tenant_id,
            subject_id,
            purpose,
        })
}

/// Any text a browser could put in a path segment, and then some.
fn token_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,160}",
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..140).prop_map(|b| b64url(&b)),
    ]
}

/// Every way a link token is read: each answers `Ok` or an error.
fn verify_all(keys: &LinkKeys, token: &str) -> [bool; 3] {
    [
        keys.verify(token).is_ok(),
        keys.verify_survey(token).is_ok(),
        keys.verify_export(token).is_ok(),
    ]
}

/// The HS256 signature of `header.claims` under `secret`, built by hand so the
/// header may say anything.
fn sign(header_json: &str, claims_json: &str, secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let signing_input = format!(
        "{}.{}",
        b64url(header_json.as_bytes()),
        b64url(claims_json.as_bytes())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&mac.finalize().into_bytes()))
}

fn access_key() -> [u8; 32] {
    MasterKey::from_bytes([3; 32]).derive("access-token", b"k1")
}

/// A JSON value of any shape, for claims an attacker holding the key might sign.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Claims that pass, with any of them replaced by an arbitrary value.
fn claims_with_one_changed() -> impl Strategy<Value = serde_json::Value> {
    let now = chrono::Utc::now().timestamp();
    let names: &'static [&str] = &[
        "iss",
        "aud",
        "sub",
        "tid",
        "role",
        "token_use",
        "jti",
        "iat",
        "nbf",
        "exp",
    ];
    (proptest::sample::select(names), json_value()).prop_map(move |(name, value)| {
        let mut claims = serde_json::json!({
            "iss": "https://assent.test", "aud": "assent-api", "sub": "c1", "tid": "t1",
            "role": "admin", "token_use": "access", "jti": "j",
            "iat": now, "nbf": now, "exp": now + 600
        });
        claims[name] = value;
        claims
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn link_verifiers_refuse_arbitrary_text(token in token_text()) {
        // Not signed by us: a 16-byte MAC is not guessed by chance.
        prop_assert_eq!(verify_all(&link_keys(), &token), [false; 3]);
    }

    #[test]
    fn link_tokens_round_trip_and_only_as_their_kind(claims in link_claims()) {
        let keys = link_keys();
        let token = keys.issue(&claims).unwrap();
        prop_assert_eq!(keys.verify(&token), Ok(claims));
        prop_assert_eq!(verify_all(&keys, &token), [true, false, false]);
        // Signed with kid 2: an installation that no longer accepts it refuses it.
        let rotated = LinkKeys::new(&MasterKey::from_bytes([7; 32]), 3, &[1]);
        prop_assert!(rotated.verify(&token).is_err());
    }

    #[test]
    fn any_changed_character_breaks_a_link(claims in link_claims(), at in any::<prop::sample::Index>(), to in "[A-Za-z0-9_-]") {
        let keys = link_keys();
        let token = keys.issue(&claims).unwrap();
        let i = at.index(token.len());
        let mut changed = token.clone();
        changed.replace_range(i..=i, &to);
        // The last character may carry unused bits, so a change there can decode to
        // the same bytes; then it is the same token.
        let same_bytes = changed == token || (i == token.len() - 1
            && base64_bytes(&changed) == base64_bytes(&token));
        if !same_bytes {
            prop_assert_eq!(verify_all(&keys, &changed), [false; 3]);
        }
    }

    #[test]
    fn a_cut_or_extended_link_is_refused(claims in link_claims(), cut in any::<prop::sample::Index>(), tail in "[A-Za-z0-9_-]{1,8}") {
        let keys = link_keys();
        let token = keys.issue(&claims).unwrap();
        let cut = &token[..cut.index(token.len())];
        prop_assert_eq!(verify_all(&keys, cut), [false; 3]);
        prop_assert_eq!(verify_all(&keys, &format!("{token}{tail}")), [false; 3]);
    }

    #[test]
    fn survey_and_export_links_round_trip(tenant in id(), other in id(), score in proptest::option::of(0u8..=10), secs in -8_000_000_000i64..253_402_300_799) {
        let keys = link_keys();
        let survey = SurveyClaims { tenant_id: tenant.clone(), invitation_id: other.clone(), score };
        let token = keys.issue_survey(&survey).unwrap();
        prop_assert_eq!(keys.verify_survey(&token), Ok(survey));
        prop_assert_eq!(verify_all(&keys, &token), [false, true, false]);

        let export = ExportClaims {
            tenant_id: tenant.clone(),
            request_id: other.clone(),
            expires_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
        };
        let token = keys.issue_export(&export).unwrap();
        prop_assert_eq!(keys.verify_export(&token), Ok(export));
        prop_assert_eq!(verify_all(&keys, &token), [false, false, true]);
    }

    #[test]
    fn issuing_refuses_bad_claims_with_an_error(tenant in ".{0,40}", purpose in ".{0,70}", score in 11u8..) {
        let keys = link_keys();
        let claims = LinkClaims {
            kind: LinkKind::Unsubscribe,
            tenant_id: tenant.clone(),
            subject_id: Uuid::nil().hyphenated().to_string(),
            purpose: Some(purpose.clone()),
        };
        let ok_purpose = (1..=64).contains(&purpose.len())
            && purpose.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        let ok_tenant = assent_core::id::is_id(&tenant);
        prop_assert_eq!(keys.issue(&claims).is_ok(), ok_purpose && ok_tenant);
        let survey = SurveyClaims { tenant_id: Uuid::nil().hyphenated().to_string(), invitation_id: Uuid::nil().hyphenated().to_string(), score: Some(score) };
        prop_assert!(keys.issue_survey(&survey).is_err());
    }

    #[test]
    fn access_token_verifier_refuses_arbitrary_text(token in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}",
    ]) {
        prop_assert!(access_tokens().verify(&token).is_err());
    }

    #[test]
    fn access_token_verifier_survives_any_signed_header(header in json_value(), claims in json_value()) {
        // Even with the key, a header or claims of the wrong shape are an error.
        let token = sign(&header.to_string(), &claims.to_string(), &access_key());
        prop_assert!(access_tokens().verify(&token).is_err());
    }

    #[test]
    fn access_token_claims_are_checked_one_by_one(claims in claims_with_one_changed()) {
        let header = r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#;
        let token = sign(header, &claims.to_string(), &access_key());
        // No panic on any value (huge, negative, fractional times included); a result
        // that is `Ok` carries exactly the claims that were signed.
        if let Ok(verified) = access_tokens().verify(&token) {
            prop_assert_eq!(serde_json::to_value(&verified).unwrap(), claims);
        }
    }

    #[test]
    fn access_tokens_round_trip_and_resist_changes(client in "[a-z0-9]{1,20}", at in any::<prop::sample::Index>(), to in "[A-Za-z0-9_-]") {
        let tokens = access_tokens();
        let now = chrono::Utc::now().timestamp();
        let issued = tokens.issue(&client, "t1", Role::Operator, now);
        prop_assert_eq!(tokens.verify(&issued.token), Ok(issued.claims.clone()));
        let i = at.index(issued.token.len());
        let mut changed = issued.token.clone();
        changed.replace_range(i..=i, &to);
        let is_last_of_a_part = issued.token[i + 1..].starts_with('.') || i + 1 == issued.token.len();
        if changed != issued.token && !is_last_of_a_part && &issued.token[i..=i] != "." {
            prop_assert!(tokens.verify(&changed).is_err());
        }
        // Signed for another key id, audience or algorithm: refused.
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some("k2".into());
        let other = jsonwebtoken::encode(&header, &issued.claims, &EncodingKey::from_secret(&access_key())).unwrap();
        prop_assert_eq!(tokens.verify(&other), Err(TokenError::UnknownKey));
    }
}

fn base64_bytes(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}
