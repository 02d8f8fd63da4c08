use crate::state::AppState;
use actix_web::{HttpResponse, get, web};

/// The process is up.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is up")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok\n")
}

/// The database answers.
#[utoipa::path(tag = "operations", responses(
    (status = 200, description = "Ready to serve"),
    (status = 503, description = "The database is unreachable", body = crate::error::Problem, content_type = "application/problem+json"),
))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> crate::ApiResult<HttpResponse> {
    state.db(|store| store.ping()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ready\n"))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Metrics in the OpenMetrics text format (which Prometheus reads)", content_type = "application/openmetrics-text")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Some(backlog) = &state.backlog {
        backlog.refresh(&state.store).await;
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode())
}
