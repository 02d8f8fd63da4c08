//! The consent fields a caller supplies, checked the same way wherever they arrive:
//! `POST /v1/subjects/{id}/consents` and the consent lines of an import.

use crate::ApiError;
use assent_core::consent::ActorKind;
use assent_store::flows::consents::{Actor, Evidence};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceIn {
    #[schema(schema_with = crate::schema::ip_address)]
    pub ip: Option<String>,
    #[schema(
        max_length = 1000,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub user_agent: Option<String>,
    /// The page or form where consent was collected.
    #[schema(
        max_length = 2000,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub url: Option<String>,
    /// SHA-256 (64 hex digits) of the text the person saw.
    #[schema(pattern = r"^[0-9a-fA-F]{64}$")]
    pub text_hash: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorIn {
    /// `subject` (default), `guardian` (a legal representative: name and relation required) or `staff`.
    #[schema(value_type = crate::schema::ActorKindName)]
    pub kind: ActorKind,
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    /// e.g. `mother`, `legal guardian`.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub relation: Option<String>,
}

fn bounded(what: &str, v: &Option<String>, max: usize) -> Result<(), ApiError> {
    match v {
        Some(s)
            if s.trim().is_empty()
                || s.chars().count() > max
                || s.chars().any(char::is_control) =>
        {
            Err(ApiError::invalid(format!(
                "{what} must be 1-{max} characters without control characters"
            )))
        }
        _ => Ok(()),
    }
}

pub fn evidence(e: EvidenceIn) -> Result<Evidence, ApiError> {
    if let Some(ip) = &e.ip
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return Err(ApiError::invalid(
            "evidence.ip must be an IPv4 or IPv6 address",
        ));
    }
    bounded("evidence.user_agent", &e.user_agent, 1000)?;
    bounded("evidence.url", &e.url, 2000)?;
    if let Some(h) = &e.text_hash
        && !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ApiError::invalid(
            "evidence.text_hash must be a SHA-256 in 64 hex digits",
        ));
    }
    Ok(Evidence {
        ip: e.ip,
        user_agent: e.user_agent,
        url: e.url,
        text_hash: e.text_hash.map(|h| h.to_ascii_lowercase()),
    })
}

pub fn actor(a: Option<ActorIn>) -> Result<Actor, ApiError> {
    let a = a.unwrap_or(ActorIn {
        kind: ActorKind::Subject,
        name: None,
        relation: None,
    });
    bounded("actor.name", &a.name, 200)?;
    bounded("actor.relation", &a.relation, 100)?;
    match a.kind {
        ActorKind::Guardian if a.name.is_none() || a.relation.is_none() => Err(ApiError::invalid(
            "a guardian's consent needs actor.name and actor.relation",
        )),
        ActorKind::System => Err(ApiError::invalid(
            "actor.kind 'system' is reserved for Assent itself",
        )),
        _ => Ok(Actor {
            kind: a.kind,
            name: a.name,
            relation: a.relation,
        }),
    }
}
