//! `POST /v1/auth/token`: OAuth 2.0 client credentials (RFC 6749 §4.4).

use crate::ApiResult;
use crate::error::{ApiError, ProblemKind};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use assent_store::tables::api_keys::ClientRejected;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Token requests are tiny; anything larger is refused before parsing.
const TOKEN_BODY_LIMIT: usize = 4 * 1024;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(value_type = crate::schema::GrantTypeName)]
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Accepted and ignored: a key's role is its scope.
    #[allow(dead_code)]
    pub scope: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

fn invalid_request(detail: &str) -> ApiError {
    ApiError::oauth(ProblemKind::MalformedRequest, "invalid_request", detail)
}

fn invalid_client() -> ApiError {
    ApiError::oauth(
        ProblemKind::InvalidClient,
        "invalid_client",
        "unknown client, wrong secret or revoked key",
    )
}

fn parse_body(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, ApiError> {
    if body.is_empty() {
        return Ok(TokenRequest::default());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(body)
            .map_err(|e| invalid_request(&format!("malformed form: {e}"))),
        "application/json" => serde_json::from_slice(body)
            .map_err(|e| invalid_request(&format!("malformed JSON: {e}"))),
        _ => Err(ApiError::oauth(
            ProblemKind::UnsupportedMediaType,
            "invalid_request",
            "send application/x-www-form-urlencoded or application/json",
        )),
    }
}

/// Client id and secret from HTTP Basic (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| invalid_client())?;
    let Some(("Basic" | "basic", encoded)) = text.split_once(' ') else {
        return Err(invalid_client());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid_client)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid_client)?;
    Ok(Some((id.to_owned(), secret.to_owned())))
}

/// Exchange API key credentials for a short-lived access token.
#[utoipa::path(
    tag = "auth",
    request_body(content = TokenRequest, description = "Form (`application/x-www-form-urlencoded`) or JSON; client credentials by HTTP Basic or in the body", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenResponse),
        crate::error::Problems,
    )
)]
#[post("/auth/token")]
pub async fn issue_token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    if body.len() > TOKEN_BODY_LIMIT {
        return Err(ApiError::new(
            ProblemKind::PayloadTooLarge,
            "the token request body is too large",
        ));
    }
    let form = parse_body(&req, &body)?;
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(ApiError::oauth(
                ProblemKind::UnsupportedGrantType,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            ));
        }
        None => return Err(invalid_request("grant_type is required")),
    }
    let (client_id, secret) = match (basic_credentials(&req)?, form.client_id, form.client_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(invalid_request(
                "authenticate the client by one method only",
            ));
        }
        (Some(basic), None, None) => basic,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => return Err(invalid_client()),
    };
    let verdict = state
        .db(move |store| store.authenticate_client(&client_id, &secret))
        .await?;
    let key = match verdict {
        Ok(key) => key,
        Err(reason) => {
            state.metrics.token_rejections.inc();
            let reason = match reason {
                ClientRejected::UnknownClient => "unknown_client",
                ClientRejected::WrongSecret => "wrong_secret",
                ClientRejected::Revoked => "revoked",
            };
            tracing::warn!(reason, "token request refused");
            return Err(invalid_client());
        }
    };
    let issued = state.tokens.issue(
        &key.id,
        &key.tenant_id,
        key.role(),
        chrono::Utc::now().timestamp(),
    );
    state.metrics.tokens_issued.inc();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
        }))
}
