//! The HTTP face of Assent: the `/v1` API for tenant staff and systems, health and
//! metrics endpoints, and (in later work) the public pages.

mod audience_input;
pub mod backlog_gauges;
mod consent_input;
mod csv_out;
pub mod error;
pub mod extract;
mod idempotency;
pub mod import;
pub mod metrics;
pub mod observe;
pub mod rate_limit;
pub mod revocation;
mod routes;
mod schema;
mod sdk;
pub mod state;
mod subject_input;
mod template_fill;

pub use error::{ApiError, ApiResult};
pub use state::AppState;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, get, web};
use std::net::TcpListener;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt, scope};

#[derive(OpenApi)]
#[openapi(
    info(title = "Assent API", description = "Consent and privacy-rights platform. Errors are application/problem+json (RFC 9457)."),
    components(schemas(error::Problem)),
    paths(
        routes::public::website::sdk_script,
        routes::public::website::sdk_style,
        routes::public::website::config,
        routes::public::website::record_answer,
        routes::public::website::visitor_state,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The problems any `/v1` operation can answer, documented once here rather than on
/// each route: the extractors, the auth check and the store produce them everywhere.
struct ProblemResponses;

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") || path == "/v1/openapi.json" {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let mut statuses = error::Problems::STATUSES.to_vec();
                if operation.request_body.is_some() {
                    statuses.extend([413, 415]);
                }
                let responses = &mut operation.responses.responses;
                for status in statuses {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error::problem_response(status).into());
                }
            }
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document, built from the same registrations that serve requests, so
/// every route is in it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts()
        .1;
    // After the routes are in: `ApiDoc`'s own modifiers run before any path exists.
    utoipa::Modify::modify(&ProblemResponses, &mut doc);
    utoipa::Modify::modify(&schema::FieldRules, &mut doc);
    doc
}

struct OpenApiJson(String);

/// This document.
#[utoipa::path(tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
#[get("/openapi.json")]
async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

fn routes(cfg: &mut ServiceConfig) {
    use routes::*;
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(
            scope::scope("/v1")
                .service(openapi_json)
                .service(auth::issue_token)
                .service(tenant::current_tenant)
                .service(branding::get_branding)
                .service(branding::put_branding)
                .service(banner::put_banner)
                .service(banner::get_banner)
                .service(banner::banner_stats)
                .service(banner::get_answer)
                .service(banner::link_visitor)
                .service(campaigns::create_campaign)
                .service(campaigns::list_campaigns)
                .service(campaigns::get_campaign)
                .service(campaigns::start_campaign)
                .service(campaigns::pause_campaign)
                .service(campaigns::resume_campaign)
                .service(campaigns::cancel_campaign)
                .service(campaigns::test_campaign)
                .service(subject_tags::get_tags)
                .service(subject_tags::put_tags)
                .service(recipients::create_recipient)
                .service(recipients::list_recipients)
                .service(recipients::get_recipient)
                .service(recipients::change_recipient)
                .service(recipients::remove_recipient)
                .service(recipients::record_disclosure)
                .service(recipients::list_disclosures)
                .service(processing::get_operator)
                .service(processing::put_operator)
                .service(processing::records_of_processing)
                .service(processing::file_records)
                .service(processing::list_filings)
                .service(incidents::report_incident)
                .service(incidents::list_incidents)
                .service(incidents::get_incident)
                .service(incidents::revise_incident)
                .service(incidents::record_step)
                .service(incidents::incident_notice)
                .service(incidents::notify_subjects)
                .service(api_keys::create_api_key)
                .service(api_keys::list_api_keys)
                .service(api_keys::get_api_key)
                .service(api_keys::revoke_api_key)
                .service(purposes::create_purpose)
                .service(purposes::list_purposes)
                .service(purposes::get_purpose)
                .service(purposes::patch_purpose)
                .service(consent_documents::current_document)
                .service(consent_documents::put_document)
                .service(consent_documents::document_versions)
                .service(consent_documents::document_version)
                .service(policies::create_policy)
                .service(policies::list_policies)
                .service(subjects::create_subject)
                .service(subjects::find_subjects)
                .service(subjects::search_subjects)
                .service(subjects::get_subject)
                .service(subjects::patch_subject)
                .service(links::create_link)
                .service(links::create_telegram_link)
                .service(consents::record_consent)
                .service(consents::subject_consents)
                .service(consents::consent_history)
                .service(consents::get_receipt)
                .service(consents::consent_checks)
                .service(ledger::verify_ledger)
                .service(ledger::export_ledger)
                .service(ledger::list_checkpoints)
                .service(audit::audit_log)
                .service(imports::start_import)
                .service(imports::get_import)
                .service(notifications::create_notification)
                .service(notifications::list_notifications)
                .service(notifications::get_notification)
                .service(notifications::requeue_notification)
                .service(subscriptions::create_subscription)
                .service(subscriptions::list_subscriptions)
                .service(subscriptions::get_subscription)
                .service(subscriptions::patch_subscription)
                .service(subscriptions::get_settings)
                .service(subscriptions::put_settings)
                .service(rights::create_request)
                .service(rights::list_requests)
                .service(rights::get_request)
                .service(rights::verify_request)
                .service(rights::resend_code)
                .service(rights::start_request)
                .service(rights::extend_request)
                .service(rights::complete_request)
                .service(rights::reject_request)
                .service(rights::export_request)
                .service(destruction::list_acts)
                .service(destruction::get_act)
                .service(destruction::propose_retention)
                .service(destruction::apply_retention)
                .service(destruction::get_rights_settings)
                .service(destruction::put_rights_settings)
                .service(calendar::get_calendar)
                .service(surveys::create_survey)
                .service(surveys::list_surveys)
                .service(surveys::get_survey)
                .service(surveys::patch_survey)
                .service(surveys::create_invitations)
                .service(surveys::survey_event)
                .service(surveys::survey_results)
                .service(templates::list_templates)
                .service(templates::get_template)
                .service(templates::put_template)
                .service(templates::delete_template)
                .service(templates::preview_template)
                .service(webhooks::create_webhook)
                .service(webhooks::list_webhooks)
                .service(webhooks::delete_webhook)
                .service(webhooks::webhook_deliveries),
        );
}

/// The documented paths with their methods, so a known path asked with another
/// method answers 405 with `Allow` (RFC 9110 §15.5.6) instead of 404.
struct RouteTable(Vec<(Vec<String>, String)>);

impl RouteTable {
    fn from_doc(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect::<Vec<_>>()
                .join(", ");
                (path.split('/').map(str::to_owned).collect(), methods)
            })
            .collect();
        Self(routes)
    }

    /// The `Allow` value of the documented route `path` matches, if any.
    fn allowed(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| {
                    if t.starts_with('{') {
                        !s.is_empty()
                    } else {
                        t == s
                    }
                });
            matches.then_some(methods.as_str())
        })
    }
}

async fn no_route(req: actix_web::HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse {
    use actix_web::ResponseError;
    match routes.allowed(req.path()) {
        Some(allow) => {
            let mut response = ApiError::new(
                error::ProblemKind::MethodNotAllowed,
                format!("{} is not allowed here; use {allow}", req.method()),
            )
            .error_response();
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::ALLOW, value);
            }
            response
        }
        None => ApiError::not_found().error_response(),
    }
}

/// A server of the operations endpoints alone (`/healthz`, `/readyz`, `/metrics`):
/// for processes that serve no API (workers, the bot), and to keep metrics off the
/// public listener's path (`ASSENT_OPS_LISTEN`).
pub fn build_ops_server(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .service(routes::health::healthz)
            .service(routes::health::readyz)
            .service(routes::health::metrics)
            .app_data(state.clone())
            .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
    })
    .workers(1)
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Binds the API to `listener`; the caller runs the returned server. `extra` adds
/// routes the caller composes from other crates (the Telegram webhook), so this
/// crate need not know them.
pub fn build_server<F>(
    state: AppState,
    listener: TcpListener,
    workers: usize,
    extra: F,
) -> std::io::Result<Server>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let document = openapi();
    let route_table = web::Data::new(RouteTable::from_doc(&document));
    let doc = web::Data::new(OpenApiJson(
        document.to_json().map_err(std::io::Error::other)?,
    ));
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .configure(routes)
            .split_for_parts();
        // Public pages are HTML for people, not part of the API document.
        app.service(routes::public::unsubscribe::unsubscribe_page)
            .service(routes::public::unsubscribe::unsubscribe)
            .service(routes::public::preferences::preferences_page)
            .service(routes::public::preferences::preferences_change)
            .service(routes::public::survey::survey_page)
            .service(routes::public::survey::survey_answer)
            .service(routes::public::export::export_download)
            .service(routes::public::rights::rights_form)
            .service(routes::public::rights::rights_form_submit)
            .service(routes::public::rights::rights_form_verify)
            .configure(routes::public::website::configure)
            .configure(extra.clone())
            .app_data(state.clone())
            .app_data(doc.clone())
            .app_data(route_table.clone())
            .app_data(extract::json_config())
            .app_data(extract::query_config())
            .app_data(extract::path_config())
            .default_service(web::to(no_route))
            .wrap(from_fn(observe::observe))
    })
    .workers(workers.max(1))
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok(server)
}
