//! Access tokens: short-lived JWTs issued for API keys (RFC 9068 profile).
//!
//! HS256 only, with keys derived from the master key per `kid`. The signing `kid`
//! and the set of `kid`s still accepted are configuration, so rotation is: add the
//! new `kid` as active, keep the old one accepted until its tokens have expired.

use crate::crypto::MasterKey;
use crate::tenancy::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The JOSE `typ` of an access token (RFC 9068 §2.1).
pub const TOKEN_TYPE: &str = "at+jwt";
/// The value of the `token_use` claim; other token kinds signed by a related key
/// are refused even if their signature checks out.
pub const TOKEN_USE: &str = "access";
const ALGORITHM: Algorithm = Algorithm::HS256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The API key (client id) the token was issued for.
    pub sub: String,
    /// The tenant the key belongs to.
    pub tid: String,
    pub role: Role,
    pub token_use: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token uses a disallowed algorithm")]
    Algorithm,
    #[error("the access token is not an access token")]
    WrongType,
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not yet valid")]
    NotYetValid,
    #[error("the access token is invalid: {0}")]
    Invalid(&'static str),
}

/// Issues and verifies access tokens.
pub struct AccessTokens {
    issuer: String,
    audience: String,
    ttl_seconds: i64,
    active_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub claims: AccessClaims,
}

impl AccessTokens {
    /// `active_kid` signs; it and every `accepted_kids` entry verify.
    pub fn new(
        master: &MasterKey,
        issuer: &str,
        audience: &str,
        ttl_seconds: i64,
        active_kid: &str,
        accepted_kids: &[String],
    ) -> Self {
        let key_for = |kid: &str| master.derive("access-token", kid.as_bytes());
        let mut decoding = HashMap::new();
        for kid in accepted_kids.iter().map(String::as_str).chain([active_kid]) {
            decoding.insert(kid.to_owned(), DecodingKey::from_secret(&key_for(kid)));
        }
        let mut validation = Validation::new(ALGORITHM);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.leeway = 30;
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_seconds,
            active_kid: active_kid.to_owned(),
            encoding: EncodingKey::from_secret(&key_for(active_kid)),
            decoding,
            validation,
        }
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    pub fn issue(&self, client_id: &str, tenant_id: &str, role: Role, now: i64) -> IssuedToken {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: client_id.to_owned(),
            tid: tenant_id.to_owned(),
            role,
            token_use: TOKEN_USE.to_owned(),
            jti: crate::id::new_id(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_seconds,
        };
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(self.active_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("HMAC signing of serialisable claims cannot fail");
        IssuedToken {
            token,
            expires_in: self.ttl_seconds,
            claims,
        }
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        // An `alg` jsonwebtoken does not know (such as "none") fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::Algorithm);
        }
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(TOKEN_TYPE))
        {
            return Err(TokenError::WrongType);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => TokenError::Expired,
                    K::ImmatureSignature => TokenError::NotYetValid,
                    K::InvalidSignature => TokenError::Invalid("bad signature"),
                    K::InvalidAudience => TokenError::Invalid("wrong audience"),
                    K::InvalidIssuer => TokenError::Invalid("wrong issuer"),
                    K::MissingRequiredClaim(_) => {
                        TokenError::Invalid("a required claim is missing")
                    }
                    K::InvalidAlgorithm => TokenError::Algorithm,
                    _ => TokenError::Malformed,
                }
            })?;
        if data.claims.token_use != TOKEN_USE {
            return Err(TokenError::WrongType);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::b64url;

    fn tokens(active: &str, accepted: &[&str]) -> AccessTokens {
        let accepted: Vec<String> = accepted.iter().map(|s| s.to_string()).collect();
        AccessTokens::new(
            &MasterKey::from_bytes([3; 32]),
            "https://assent.test",
            "assent-api",
            900,
            active,
            &accepted,
        )
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// Signs arbitrary header and claims with the key of `kid`, as an attacker who
    /// somehow learned it (or a sloppy issuer) would.
    fn forge(header: &Header, claims: &serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn valid_claims() -> serde_json::Value {
        let n = now();
        serde_json::json!({
            "iss": "https://assent.test", "aud": "assent-api", "sub": "c1", "tid": "t1",
            "role": "admin", "token_use": "access", "jti": "j", "iat": n, "nbf": n, "exp": n + 600
        })
    }

    fn header(alg: Algorithm, kid: &str) -> Header {
        let mut h = Header::new(alg);
        h.typ = Some(TOKEN_TYPE.into());
        h.kid = Some(kid.into());
        h
    }

    fn key(kid: &str) -> [u8; 32] {
        MasterKey::from_bytes([3; 32]).derive("access-token", kid.as_bytes())
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let t = tokens("k1", &[]);
        let issued = t.issue("client", "tenant", Role::Operator, now());
        let claims = t.verify(&issued.token).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!(claims.role, Role::Operator);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn the_forged_helper_produces_accepted_tokens() {
        // Guards the negative tests below: they change one thing from a token that passes.
        let t = tokens("k1", &[]);
        assert!(
            t.verify(&forge(
                &header(ALGORITHM, "k1"),
                &valid_claims(),
                &key("k1")
            ))
            .is_ok()
        );
    }

    #[test]
    fn rotation_keeps_old_kid_valid_while_accepted() {
        let old = tokens("k1", &[]).issue("c", "t", Role::Admin, now()).token;
        assert!(tokens("k2", &["k1"]).verify(&old).is_ok());
        assert_eq!(tokens("k2", &[]).verify(&old), Err(TokenError::UnknownKey));
    }

    #[test]
    fn alg_none_is_refused() {
        let h = b64url(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
        let c = b64url(valid_claims().to_string().as_bytes());
        assert_eq!(
            tokens("k1", &[]).verify(&format!("{h}.{c}.")),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn another_algorithm_is_refused() {
        let forged = forge(&header(Algorithm::HS512, "k1"), &valid_claims(), &key("k1"));
        assert_eq!(
            tokens("k1", &[]).verify(&forged),
            Err(TokenError::Algorithm)
        );
    }

    #[test]
    fn unknown_kid_and_missing_kid_are_refused() {
        let forged = forge(&header(ALGORITHM, "k9"), &valid_claims(), &key("k9"));
        assert_eq!(
            tokens("k1", &[]).verify(&forged),
            Err(TokenError::UnknownKey)
        );
        let mut h = header(ALGORITHM, "k1");
        h.kid = None;
        let forged = forge(&h, &valid_claims(), &key("k1"));
        assert_eq!(
            tokens("k1", &[]).verify(&forged),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let forged = forge(&header(ALGORITHM, "k1"), &valid_claims(), &[9; 32]);
        assert_eq!(
            tokens("k1", &[]).verify(&forged),
            Err(TokenError::Invalid("bad signature"))
        );
    }

    #[test]
    fn audience_and_issuer_are_required_and_checked() {
        let t = tokens("k1", &[]);
        for (field, value, expected) in [
            ("aud", "someone-else", TokenError::Invalid("wrong audience")),
            (
                "iss",
                "https://evil.test",
                TokenError::Invalid("wrong issuer"),
            ),
        ] {
            let mut claims = valid_claims();
            claims[field] = value.into();
            let forged = forge(&header(ALGORITHM, "k1"), &claims, &key("k1"));
            assert_eq!(t.verify(&forged), Err(expected), "{field} = {value:?}");
        }
        for missing in ["aud", "iss", "nbf", "iat", "exp", "sub"] {
            let mut claims = valid_claims();
            claims.as_object_mut().unwrap().remove(missing);
            let forged = forge(&header(ALGORITHM, "k1"), &claims, &key("k1"));
            assert!(
                t.verify(&forged).is_err(),
                "a token without {missing} must be refused"
            );
        }
    }

    #[test]
    fn expired_and_not_yet_valid_are_refused() {
        let t = tokens("k1", &[]);
        let old = t.issue("c", "t", Role::Admin, now() - 3600).token;
        assert_eq!(t.verify(&old), Err(TokenError::Expired));
        let mut claims = valid_claims();
        claims["nbf"] = (now() + 600).into();
        claims["exp"] = (now() + 1200).into();
        let future = forge(&header(ALGORITHM, "k1"), &claims, &key("k1"));
        assert_eq!(t.verify(&future), Err(TokenError::NotYetValid));
    }

    #[test]
    fn tokens_of_another_type_are_refused() {
        let t = tokens("k1", &[]);
        let mut claims = valid_claims();
        claims["token_use"] = "link".into();
        let forged = forge(&header(ALGORITHM, "k1"), &claims, &key("k1"));
        assert_eq!(t.verify(&forged), Err(TokenError::WrongType));
        let mut h = header(ALGORITHM, "k1");
        h.typ = Some("JWT".into());
        let forged = forge(&h, &valid_claims(), &key("k1"));
        assert_eq!(t.verify(&forged), Err(TokenError::WrongType));
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(tokens("k1", &[]).verify("abc"), Err(TokenError::Malformed));
        assert_eq!(tokens("k1", &[]).verify(""), Err(TokenError::Malformed));
    }
}
