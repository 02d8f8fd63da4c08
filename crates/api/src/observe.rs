//! Per-request request id, log line and metrics.

use crate::metrics::{RequestLabels, RouteLabels};
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, for handlers that log.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// A caller-supplied id is kept when it is short and plain (so it can join logs
/// across systems); anything else is replaced.
fn accept_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let plain = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    plain.then(|| text.to_owned())
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let started = Instant::now();
    let request_id =
        accept_request_id(req.headers().get(&REQUEST_ID)).unwrap_or_else(assent_core::id::new_id);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().to_string();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // The path is not logged: public pages carry tokens in it. The route pattern is.
    let span = tracing::info_span!("request", request_id = %request_id, method = %method);
    let mut res = next.call(req).instrument(span.clone()).await?;

    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(state) = state {
        state
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                route: route.clone(),
                status,
            })
            .inc();
        state
            .metrics
            .duration
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(%route, status, elapsed_ms = elapsed.as_millis() as u64, "answered");
        } else {
            tracing::info!(%route, status, elapsed_ms = elapsed.as_millis() as u64, "answered");
        }
    });
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_plain_ids_and_replaces_others() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(
            accept_request_id(Some(&v("abc-123"))),
            Some("abc-123".into())
        );
        assert_eq!(accept_request_id(Some(&v("a b"))), None);
        assert_eq!(accept_request_id(Some(&v(&"x".repeat(65)))), None);
        assert_eq!(accept_request_id(None), None);
    }
}
