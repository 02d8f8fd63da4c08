//! Request extractors: JSON and query parsing with problem+json errors, the
//! authenticated principal, pagination.

use crate::error::{ApiError, ProblemKind};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use assent_core::access_token::AccessClaims;
use assent_core::page::PageRequest;
use assent_core::tenancy::{Permission, Role};
use assent_store::tables::audit::Actor;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;

/// Largest JSON body accepted by `/v1` routes (a policy text fits).
pub const JSON_LIMIT: usize = 256 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _req| json_error(err).into())
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            ProblemKind::PayloadTooLarge,
            format!("the body exceeds {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "send the body as application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::invalid(e.to_string()),
        JsonPayloadError::Deserialize(e) => ApiError::malformed(format!("malformed JSON: {e}")),
        other => ApiError::malformed(other.to_string()),
    }
}

/// A JSON body: unreadable JSON is a 400, JSON of the wrong shape (types, unknown
/// or missing fields) a 422. actix's own extractor reports some shape errors (an
/// enum given a number) as syntax errors, hence the two steps.
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            serde_json::from_value(value)
                .map(Json)
                .map_err(|e| ApiError::invalid(e.to_string()).into())
        })
    }
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let detail = match err {
            QueryPayloadError::Deserialize(e) => e.to_string(),
            other => other.to_string(),
        };
        ApiError::invalid(format!("bad query parameters: {detail}")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    // A path that does not parse names nothing that exists.
    web::PathConfig::default().error_handler(|_err, _req| ApiError::not_found().into())
}

/// The caller, authenticated by a bearer access token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: String,
    pub client_id: String,
    pub role: Role,
    /// Why the caller acts, from `X-Assent-Reason` (see [`reason`]).
    pub reason: Option<String>,
}

impl Principal {
    /// Who acts and why, as the audit log records it.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.client_id.clone(),
            reason: self.reason.clone(),
        }
    }

    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the role '{}' may not do this",
                self.role
            )))
        }
    }
}

impl From<AccessClaims> for Principal {
    fn from(c: AccessClaims) -> Self {
        Self {
            tenant_id: c.tid,
            client_id: c.sub,
            role: c.role,
            reason: None,
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verified = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(ApiError::internal)
            .and_then(|state| {
                let mut principal = authenticate(&state, req)?;
                principal.reason = reason(req)?;
                Ok((principal, state))
            });
        Box::pin(async move {
            let (principal, state) = verified?;
            if let Some(revoked) = state.revoked_keys.lookup(&principal.client_id) {
                return not_revoked(principal, revoked);
            }
            let (tenant, client) = (principal.tenant_id.clone(), principal.client_id.clone());
            let asked = std::time::Instant::now();
            let revoked = state
                .db(move |store| store.key_revoked(&tenant, &client))
                .await?;
            state
                .revoked_keys
                .remember(&principal.client_id, revoked, asked);
            not_revoked(principal, revoked)
        })
    }
}

fn not_revoked(principal: Principal, revoked: bool) -> Result<Principal, ApiError> {
    if revoked {
        Err(ApiError::unauthenticated(
            "the API key this token was issued for has been revoked",
        ))
    } else {
        Ok(principal)
    }
}

fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Principal, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated("send an access token as 'Authorization: Bearer <token>'")
    })?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
    let token = text
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| ApiError::unauthenticated("the Authorization scheme must be Bearer"))?;
    let claims = state
        .tokens
        .verify(token)
        .map_err(|e| ApiError::unauthenticated(e.to_string()))?;
    Ok(claims.into())
}

/// The header in which staff state why they act; it lands in the audit log.
pub const REASON_HEADER: &str = "x-assent-reason";
/// Longest reason accepted, in characters.
pub const REASON_MAX_CHARS: usize = 500;

/// The stated reason: UTF-8 text of at most [`REASON_MAX_CHARS`] characters
/// without control characters, trimmed; absent or blank is no reason.
pub fn reason(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(REASON_HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::malformed("send X-Assent-Reason once"));
    }
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| ApiError::malformed("X-Assent-Reason is not UTF-8 text"))?
        .trim();
    if text.chars().any(char::is_control) {
        return Err(ApiError::malformed(
            "X-Assent-Reason may not contain control characters",
        ));
    }
    if text.chars().count() > REASON_MAX_CHARS {
        return Err(ApiError::malformed(format!(
            "X-Assent-Reason is longer than {REASON_MAX_CHARS} characters"
        )));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl PageQuery {
    pub fn to_request(&self) -> Result<PageRequest, ApiError> {
        PageRequest::parse(self.cursor.as_deref(), self.limit)
            .map_err(|e| ApiError::invalid(e.to_string()))
    }
}

/// For a change's nullable field: given (even as `null`) is `Some`, absent stays
/// `None` (with `#[serde(default, deserialize_with = "crate::extract::present")]`).
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
