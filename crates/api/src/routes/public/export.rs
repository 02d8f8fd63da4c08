//! `/x/{token}`: the download of a person's data export (access and portability
//! requests). The link goes to the person in the completion notice; it is signed,
//! names only the request, and stops working after its expiry. The document is built
//! on download, so no second copy of the data is kept, and each download is audited.

use super::{Locale, accept_language, not_found, security_headers};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use assent_store::flows::export;
use chrono::Utc;

fn expired(lang: Locale) -> HttpResponse {
    super::view::said(StatusCode::GONE, lang, "export_expired")
}

#[get("/x/{token}")]
pub async fn export_download(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(slow_down) = super::rate_limited(&state, &req) {
        return slow_down;
    }
    let lang = accept_language(&req).unwrap_or(Locale::Ru);
    let Ok(claims) = state.links.verify_export(&path.into_inner()) else {
        return not_found(lang);
    };
    let now = Utc::now();
    if claims.expires_at <= now {
        return expired(lang);
    }
    let tenant = claims.tenant_id.clone();
    let found = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let (keys, group) = (&keyring.tenant, keyring.group_id());
            store.write(&tenant, |c| {
                export::for_link(c, keys, &tenant, group, &claims.request_id, now)
            })
        })
        .await;
    match found {
        Ok(Some(doc)) => {
            let mut response = HttpResponse::Ok();
            security_headers(&mut response);
            response
                .content_type("application/json; charset=utf-8")
                .insert_header((
                    "Content-Disposition",
                    format!(
                        "attachment; filename=\"personal-data-{}.json\"",
                        now.format("%Y-%m-%d")
                    ),
                ))
                .body(serde_json::to_vec_pretty(&doc).unwrap_or_default())
        }
        Ok(None) => not_found(lang),
        Err(_) => super::unavailable(lang),
    }
}
