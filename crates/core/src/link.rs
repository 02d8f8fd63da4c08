//! Link tokens for the public pages a person reaches from a message: `/u/{token}`
//! (unsubscribe) and `/p/{token}` (preferences).
//!
//! A token must let its holder act without logging in, so it has to be unforgeable
//! (HMAC-SHA256 under a key derived from the master key per key id), carry no
//! personal data (only opaque ids, as links end up in logs and forwarded mail), and
//! stay short and URL-safe. Unsubscribe links never expire: the law requires
//! unsubscribing to keep working from any old message, so there is no expiry field.
//!
//! Layout before base64url (no padding):
//! `[version][kid][kind][tenant: 16][subject: 16][purpose len][purpose][mac: 16]`,
//! the MAC (truncated HMAC-SHA256) covering everything before it.

use crate::crypto::{MasterKey, b64url};
use crate::tenancy::InvalidValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

text_enum!(
    /// What a link token opens.
    LinkKind, "link kind" {
        Unsubscribe => "unsubscribe",
        Preferences => "preferences",
    }
);

impl LinkKind {
    /// The public path a token of this kind is appended to.
    pub fn route_prefix(self) -> &'static str {
        match self {
            Self::Unsubscribe => "/u/",
            Self::Preferences => "/p/",
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            Self::Unsubscribe => 1,
            Self::Preferences => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Unsubscribe),
            2 => Some(Self::Preferences),
            _ => None,
        }
    }
}

/// What a link token says. Ids are canonical UUID strings (see [`crate::id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub kind: LinkKind,
    pub tenant_id: String,
    pub subject_id: String,
    /// The purpose the link is about (`[a-z0-9_]{1,64}`), or none for all purposes.
    pub purpose: Option<String>,
}

/// What a survey link (`/s/{token}`) says. Ids are canonical UUID strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyClaims {
    pub tenant_id: String,
    pub invitation_id: String,
    /// The score the link pre-selects; none for a plain link to the survey.
    pub score: Option<u8>,
}

/// What an export download link (`/x/{token}`) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportClaims {
    pub tenant_id: String,
    pub request_id: String,
    /// Whole seconds; the link is refused from then on.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The path export links are appended to.
pub const EXPORT_ROUTE_PREFIX: &str = "/x/";

/// The path survey links are appended to.
pub const SURVEY_ROUTE_PREFIX: &str = "/s/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link was signed by an unknown key")]
    UnknownKey,
    #[error("the link's signature is invalid")]
    BadSignature,
}

const VERSION: u8 = 1;
/// The kind byte of survey links; [`LinkKind`] uses 1 and 2, so a survey token is
/// never accepted as an unsubscribe or preferences token, nor the other way round.
const SURVEY_KIND: u8 = 3;
/// The kind byte of export links.
const EXPORT_KIND: u8 = 4;
const NO_SCORE: u8 = 0xFF;
const MAX_SURVEY_SCORE: u8 = 10;
const MAC_LEN: usize = 16;
const HEADER_LEN: usize = 3;
const ID_LEN: usize = 16;
const MAX_PURPOSE_LEN: usize = 64;
const MIN_TOKEN_BYTES: usize = HEADER_LEN + 2 * ID_LEN + 1 + MAC_LEN;
const MAX_TOKEN_BYTES: usize = MIN_TOKEN_BYTES + MAX_PURPOSE_LEN;
/// Base64 length of the longest valid token; longer input is refused before decoding.
const MAX_TOKEN_CHARS: usize = (MAX_TOKEN_BYTES * 4).div_ceil(3);

type HmacSha256 = Hmac<Sha256>;

/// Issues and verifies link tokens.
///
/// `active_kid` signs; it and every accepted kid verify. Rotation: make a new kid
/// active and keep the old one accepted for as long as old messages' links should
/// work (for unsubscribe links, in practice, for good).
pub struct LinkKeys {
    active_kid: u8,
    keys: BTreeMap<u8, [u8; 32]>,
}

impl LinkKeys {
    pub fn new(master: &MasterKey, active_kid: u8, accepted_kids: &[u8]) -> Self {
        let keys = accepted_kids
            .iter()
            .copied()
            .chain([active_kid])
            .map(|kid| (kid, master.derive("link-token", &[kid])))
            .collect();
        Self { active_kid, keys }
    }

    pub fn active_kid(&self) -> u8 {
        self.active_kid
    }

    /// A token for `claims`, signed with the active key.
    pub fn issue(&self, claims: &LinkClaims) -> Result<String, InvalidValue> {
        let tenant = uuid_bytes("tenant id", &claims.tenant_id)?;
        let subject = uuid_bytes("subject id", &claims.subject_id)?;
        let purpose = claims.purpose.as_deref().unwrap_or("");
        if claims.purpose.is_some() && !is_purpose_code(purpose) {
            return Err(InvalidValue(format!(
                "invalid purpose code '{purpose}' for a link: use 1-{MAX_PURPOSE_LEN} characters of a-z, 0-9, _, - and ."
            )));
        }
        let mut bytes = Vec::with_capacity(MIN_TOKEN_BYTES + purpose.len());
        bytes.extend_from_slice(&[VERSION, self.active_kid, claims.kind.to_byte()]);
        bytes.extend_from_slice(&tenant);
        bytes.extend_from_slice(&subject);
        bytes.push(purpose.len() as u8);
        bytes.extend_from_slice(purpose.as_bytes());
        let key = &self.keys[&self.active_kid];
        let tag = mac(key, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        Ok(b64url(&bytes))
    }

    /// The claims of a token this installation issued with a still-accepted key.
    pub fn verify(&self, token: &str) -> Result<LinkClaims, LinkError> {
        let signed = self.authentic(token)?;
        // Past this point the bytes are ours, so a failure means a bug or a leaked
        // key; it is still reported, never a panic.
        parse_body(&signed).ok_or(LinkError::Malformed)
    }

    /// A survey link: the invitation and, for a link per score, the score it
    /// pre-selects. Like the other links it carries no personal data and no expiry
    /// (the invitation's own deadline decides whether it is still answered).
    pub fn issue_survey(&self, claims: &SurveyClaims) -> Result<String, InvalidValue> {
        let tenant = uuid_bytes("tenant id", &claims.tenant_id)?;
        let invitation = uuid_bytes("invitation id", &claims.invitation_id)?;
        let score = match claims.score {
            Some(s) if s <= MAX_SURVEY_SCORE => s,
            Some(s) => {
                return Err(InvalidValue(format!(
                    "a survey score of {s} is out of range"
                )));
            }
            None => NO_SCORE,
        };
        let mut bytes = Vec::with_capacity(MIN_TOKEN_BYTES);
        bytes.extend_from_slice(&[VERSION, self.active_kid, SURVEY_KIND]);
        bytes.extend_from_slice(&tenant);
        bytes.extend_from_slice(&invitation);
        bytes.push(score);
        let key = &self.keys[&self.active_kid];
        let tag = mac(key, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        Ok(b64url(&bytes))
    }

    /// The claims of a survey link this installation issued.
    pub fn verify_survey(&self, token: &str) -> Result<SurveyClaims, LinkError> {
        let signed = self.authentic(token)?;
        let [SURVEY_KIND, rest @ ..] = signed.as_slice() else {
            return Err(LinkError::Malformed);
        };
        let (tenant, rest) = rest.split_at_checked(ID_LEN).ok_or(LinkError::Malformed)?;
        let (invitation, rest) = rest.split_at_checked(ID_LEN).ok_or(LinkError::Malformed)?;
        let score = match rest {
            [NO_SCORE] => None,
            [s] if *s <= MAX_SURVEY_SCORE => Some(*s),
            _ => return Err(LinkError::Malformed),
        };
        Ok(SurveyClaims {
            tenant_id: uuid_text(tenant).ok_or(LinkError::Malformed)?,
            invitation_id: uuid_text(invitation).ok_or(LinkError::Malformed)?,
            score,
        })
    }

    /// A download link for a person's data export (`/x/{token}`): the request and
    /// the moment the link stops working. Unlike the other links it expires, since
    /// whoever holds it reads everything held about the person.
    pub fn issue_export(&self, claims: &ExportClaims) -> Result<String, InvalidValue> {
        let tenant = uuid_bytes("tenant id", &claims.tenant_id)?;
        let request = uuid_bytes("request id", &claims.request_id)?;
        let mut bytes = Vec::with_capacity(MIN_TOKEN_BYTES + 8);
        bytes.extend_from_slice(&[VERSION, self.active_kid, EXPORT_KIND]);
        bytes.extend_from_slice(&tenant);
        bytes.extend_from_slice(&request);
        bytes.extend_from_slice(&claims.expires_at.timestamp().to_be_bytes());
        let key = &self.keys[&self.active_kid];
        let tag = mac(key, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        Ok(b64url(&bytes))
    }

    /// The claims of an export link this installation issued (expired or not: the
    /// caller compares `expires_at` with its clock).
    pub fn verify_export(&self, token: &str) -> Result<ExportClaims, LinkError> {
        let signed = self.authentic(token)?;
        let [EXPORT_KIND, rest @ ..] = signed.as_slice() else {
            return Err(LinkError::Malformed);
        };
        let (tenant, rest) = rest.split_at_checked(ID_LEN).ok_or(LinkError::Malformed)?;
        let (request, rest) = rest.split_at_checked(ID_LEN).ok_or(LinkError::Malformed)?;
        let secs: [u8; 8] = rest.try_into().map_err(|_| LinkError::Malformed)?;
        Ok(ExportClaims {
            tenant_id: uuid_text(tenant).ok_or(LinkError::Malformed)?,
            request_id: uuid_text(request).ok_or(LinkError::Malformed)?,
            expires_at: chrono::DateTime::from_timestamp(i64::from_be_bytes(secs), 0)
                .ok_or(LinkError::Malformed)?,
        })
    }

    /// The signed bytes after version and kid, once the MAC checks out.
    fn authentic(&self, token: &str) -> Result<Vec<u8>, LinkError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(LinkError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| LinkError::Malformed)?;
        if !(MIN_TOKEN_BYTES..=MAX_TOKEN_BYTES).contains(&bytes.len()) || bytes[0] != VERSION {
            return Err(LinkError::Malformed);
        }
        let key = self.keys.get(&bytes[1]).ok_or(LinkError::UnknownKey)?;
        let (signed, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        // Constant-time comparison of the leftmost MAC_LEN bytes.
        mac(key, signed)
            .verify_truncated_left(tag)
            .map_err(|_| LinkError::BadSignature)?;
        Ok(signed[2..].to_vec())
    }
}

impl fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkKeys")
            .field("active_kid", &self.active_kid)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn mac(key: &[u8; 32], data: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac
}

/// Parses `[kind][tenant][subject][purpose len][purpose]` (the signed bytes after
/// version and kid) exactly.
fn parse_body(body: &[u8]) -> Option<LinkClaims> {
    let (&kind, rest) = body.split_first()?;
    let kind = LinkKind::from_byte(kind)?;
    let (tenant, rest) = rest.split_at_checked(ID_LEN)?;
    let (subject, rest) = rest.split_at_checked(ID_LEN)?;
    let (&len, purpose) = rest.split_first()?;
    if purpose.len() != usize::from(len) {
        return None;
    }
    let purpose = match purpose {
        [] => None,
        bytes => {
            let code = std::str::from_utf8(bytes)
                .ok()
                .filter(|c| is_purpose_code(c))?;
            Some(code.to_owned())
        }
    };
    Some(LinkClaims {
        kind,
        tenant_id: uuid_text(tenant)?,
        subject_id: uuid_text(subject)?,
        purpose,
    })
}

fn uuid_bytes(what: &str, id: &str) -> Result<[u8; 16], InvalidValue> {
    if !crate::id::is_id(id) {
        return Err(InvalidValue(format!("the {what} '{id}' is not a UUID")));
    }
    Uuid::try_parse(id)
        .map(|u| *u.as_bytes())
        .map_err(|_| InvalidValue(format!("the {what} '{id}' is not a UUID")))
}

fn uuid_text(bytes: &[u8]) -> Option<String> {
    Uuid::from_slice(bytes)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// Every code a purpose may have (`.` and `-` included: group purposes are often
/// named `group.marketing`), so every subscribed message can carry its links.
fn is_purpose_code(code: &str) -> bool {
    code.len() <= MAX_PURPOSE_LEN && crate::consent::validate_purpose_code(code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::new_id;

    fn master() -> MasterKey {
        MasterKey::from_bytes([5; 32])
    }

    fn claims(kind: LinkKind, purpose: Option<&str>) -> LinkClaims {
        LinkClaims {
            kind,
            tenant_id: new_id(),
            subject_id: new_id(),
            purpose: purpose.map(str::to_owned),
        }
    }

    fn all_claims() -> Vec<LinkClaims> {
        vec![
            claims(LinkKind::Unsubscribe, Some("newsletter")),
            claims(LinkKind::Unsubscribe, None),
            claims(LinkKind::Preferences, None),
            claims(LinkKind::Preferences, Some(&"p".repeat(64))),
        ]
    }

    #[test]
    fn tokens_round_trip() {
        let keys = LinkKeys::new(&master(), 1, &[]);
        for c in all_claims() {
            let token = keys.issue(&c).unwrap();
            assert_eq!(keys.verify(&token), Ok(c));
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{token} is not URL-safe"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_fails() {
        let keys = LinkKeys::new(&master(), 1, &[]);
        for c in all_claims() {
            let token = keys.issue(&c).unwrap();
            let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
            for i in 0..raw.len() * 8 {
                let mut flipped = raw.clone();
                flipped[i / 8] ^= 1 << (i % 8);
                assert!(keys.verify(&b64url(&flipped)).is_err(), "byte bit {i}");
            }
            // Flips in the text too: including the unused low bits of the last
            // character, which base64 must not silently ignore.
            for i in 0..token.len() * 8 {
                let mut text = token.clone().into_bytes();
                text[i / 8] ^= 1 << (i % 8);
                let text = String::from_utf8_lossy(&text);
                assert!(keys.verify(&text).is_err(), "text bit {i}");
            }
        }
    }

    #[test]
    fn another_master_key_fails() {
        let c = claims(LinkKind::Unsubscribe, Some("news"));
        let theirs = LinkKeys::new(&MasterKey::from_bytes([6; 32]), 1, &[])
            .issue(&c)
            .unwrap();
        assert_eq!(
            LinkKeys::new(&master(), 1, &[]).verify(&theirs),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn rotation_keeps_old_kid_while_accepted() {
        let c = claims(LinkKind::Unsubscribe, Some("news"));
        let old = LinkKeys::new(&master(), 1, &[]).issue(&c).unwrap();
        let rotated = LinkKeys::new(&master(), 2, &[1]);
        assert_eq!(rotated.verify(&old), Ok(c.clone()));
        let new = rotated.issue(&c).unwrap();
        assert_ne!(new, old);
        assert_eq!(rotated.verify(&new), Ok(c.clone()));
        let retired = LinkKeys::new(&master(), 2, &[]);
        assert_eq!(retired.verify(&old), Err(LinkError::UnknownKey));
        assert_eq!(retired.verify(&new), Ok(c));
    }

    #[test]
    fn unknown_kid_fails() {
        let c = claims(LinkKind::Preferences, None);
        let token = LinkKeys::new(&master(), 9, &[]).issue(&c).unwrap();
        assert_eq!(
            LinkKeys::new(&master(), 1, &[2, 3]).verify(&token),
            Err(LinkError::UnknownKey)
        );
    }

    #[test]
    fn tokens_are_short_and_carry_only_ids() {
        let keys = LinkKeys::new(&master(), 1, &[]);
        let c = claims(LinkKind::Unsubscribe, Some(&"a".repeat(32)));
        let token = keys.issue(&c).unwrap();
        assert!(token.len() <= 120, "{} chars", token.len());
        // Nothing but the fixed layout: ids as raw bytes, no room for anything else.
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert_eq!(raw.len(), MIN_TOKEN_BYTES + 32);
        assert!(!token.contains(&c.tenant_id) && !token.contains(&c.subject_id));
        const { assert!(MAX_TOKEN_CHARS <= 160) };
    }

    #[test]
    fn invalid_claims_are_refused_on_issue() {
        let keys = LinkKeys::new(&master(), 1, &[]);
        let good = claims(LinkKind::Unsubscribe, Some("news"));
        let bad_ids = ["", "someone@example.com", &new_id().to_uppercase(), "1234"];
        for id in bad_ids {
            let mut c = good.clone();
            c.tenant_id = id.to_owned();
            assert!(keys.issue(&c).is_err(), "tenant {id:?}");
            let mut c = good.clone();
            c.subject_id = id.to_owned();
            assert!(keys.issue(&c).is_err(), "subject {id:?}");
        }
        for purpose in ["", "News", "a b", "me@example.com", &"a".repeat(65)] {
            let mut c = good.clone();
            c.purpose = Some(purpose.to_owned());
            assert!(keys.issue(&c).is_err(), "purpose {purpose:?}");
        }
        // Every valid purpose code gets links, group codes with dots included.
        for purpose in ["group.marketing", "a-b", "x_1"] {
            let mut c = good.clone();
            c.purpose = Some(purpose.to_owned());
            let token = keys.issue(&c).expect(purpose);
            assert_eq!(keys.verify(&token), Ok(c));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let keys = LinkKeys::new(&master(), 1, &[]);
        let token = keys
            .issue(&claims(LinkKind::Unsubscribe, Some("news")))
            .unwrap();
        let long = "A".repeat(10_000);
        for garbage in [
            "",
            "!",
            "a",
            "====",
            "not base64 at all",
            "AQEB",
            &format!("{token}="),
            &format!("{token}A"),
            &long,
            "ünïcödé",
        ] {
            assert!(keys.verify(garbage).is_err(), "{garbage:?}");
        }
        for end in 0..token.len() {
            assert!(keys.verify(&token[..end]).is_err(), "truncated to {end}");
        }
        // Well-formed base64 of every length, with a valid version and kid.
        for len in 0..=MAX_TOKEN_BYTES + 2 {
            let mut raw = vec![0xA5u8; len];
            if len > 1 {
                raw[0] = VERSION;
                raw[1] = 1;
            }
            assert!(keys.verify(&b64url(&raw)).is_err(), "length {len}");
        }
    }

    #[test]
    fn a_validly_signed_but_bad_body_is_malformed() {
        // Guards parse_body: correct MAC, nonsense inside.
        let keys = LinkKeys::new(&master(), 1, &[]);
        let key = master().derive("link-token", &[1]);
        let sign = |mut body: Vec<u8>| {
            let tag = mac(&key, &body).finalize().into_bytes();
            body.extend_from_slice(&tag[..MAC_LEN]);
            b64url(&body)
        };
        let mut body = vec![VERSION, 1, 7];
        body.extend_from_slice(&[0; 32]);
        body.push(0);
        assert_eq!(keys.verify(&sign(body.clone())), Err(LinkError::Malformed));
        body[2] = 1;
        assert!(keys.verify(&sign(body.clone())).is_ok());
        *body.last_mut().unwrap() = 3;
        body.extend_from_slice(b"ab");
        assert_eq!(keys.verify(&sign(body.clone())), Err(LinkError::Malformed));
        body.push(b'Z');
        assert_eq!(keys.verify(&sign(body)), Err(LinkError::Malformed));
    }

    #[test]
    fn kinds_have_routes() {
        assert_eq!(LinkKind::Unsubscribe.route_prefix(), "/u/");
        assert_eq!(LinkKind::Preferences.route_prefix(), "/p/");
        for &k in LinkKind::ALL {
            assert_eq!(LinkKind::from_byte(k.to_byte()), Some(k));
        }
    }

    #[test]
    fn survey_links_round_trip_and_stay_apart_from_other_links() {
        let keys = LinkKeys::new(&master(), 1, &[]);
        for score in [None, Some(0), Some(7), Some(10)] {
            let claims = SurveyClaims {
                tenant_id: new_id(),
                invitation_id: new_id(),
                score,
            };
            let token = keys.issue_survey(&claims).unwrap();
            assert!(token.len() < 80, "short enough for a mail client: {token}");
            assert_eq!(keys.verify_survey(&token), Ok(claims));
            // A survey link is not an unsubscribe or preferences link.
            assert_eq!(keys.verify(&token), Err(LinkError::Malformed));
        }
        let unsubscribe = keys.issue(&claims(LinkKind::Unsubscribe, None)).unwrap();
        assert_eq!(keys.verify_survey(&unsubscribe), Err(LinkError::Malformed));
        let out_of_range = SurveyClaims {
            tenant_id: new_id(),
            invitation_id: new_id(),
            score: Some(11),
        };
        assert!(keys.issue_survey(&out_of_range).is_err());
    }

    #[test]
    fn a_survey_link_cannot_be_changed_to_another_score() {
        let keys = LinkKeys::new(&master(), 1, &[]);
        let claims = SurveyClaims {
            tenant_id: new_id(),
            invitation_id: new_id(),
            score: Some(3),
        };
        let token = keys.issue_survey(&claims).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let score_at = bytes.len() - MAC_LEN - 1;
        bytes[score_at] = 10;
        assert_eq!(
            keys.verify_survey(&b64url(&bytes)),
            Err(LinkError::BadSignature)
        );
        let other = LinkKeys::new(&MasterKey::from_bytes([6; 32]), 1, &[]);
        assert_eq!(other.verify_survey(&token), Err(LinkError::BadSignature));
    }

    #[test]
    fn export_links_round_trip_and_stay_apart_from_other_links() {
        let keys = LinkKeys::new(&master(), 1, &[]);
        let claims = ExportClaims {
            tenant_id: new_id(),
            request_id: new_id(),
            expires_at: chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
        };
        let token = keys.issue_export(&claims).unwrap();
        assert_eq!(keys.verify_export(&token), Ok(claims.clone()));
        assert_eq!(keys.verify(&token), Err(LinkError::Malformed));
        assert_eq!(keys.verify_survey(&token), Err(LinkError::Malformed));
        let unsubscribe = keys.issue(&all_claims()[0]).unwrap();
        assert_eq!(keys.verify_export(&unsubscribe), Err(LinkError::Malformed));
        // A later expiry cannot be written into a link: every byte is signed.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let at = HEADER_LEN + 2 * ID_LEN + 7;
        bytes[at] ^= 1;
        assert_eq!(
            keys.verify_export(&b64url(&bytes)),
            Err(LinkError::BadSignature)
        );
    }
}
