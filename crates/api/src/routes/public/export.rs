//! `/x/{token}`: the download of a person's data export (access and portability
//! requests). The link goes to the person in the completion notice; it is signed,
//! names only the request, and stops working after its expiry. The document is built
//! on download, so no second copy of the data is kept, and each download is audited.

use super::{Lang, Page, accept_language, not_found, render, security_headers};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use assent_core::rights::{RequestStatus, RequestType};
use assent_store::StoreError;
use assent_store::flows::export;
use assent_store::tables::audit;
use assent_store::tables::rights_requests;
use chrono::Utc;

fn expired(lang: Lang) -> HttpResponse {
    render(
        StatusCode::GONE,
        Page::message(
            lang,
            lang.pick("Ссылка устарела", "Link expired"),
            lang.pick(
                "Срок действия ссылки на выгрузку истёк. Чтобы получить данные снова, подайте новый запрос.",
                "This download link has expired. To receive your data again, please file a new request.",
            ),
        ),
    )
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
    let lang = accept_language(&req).unwrap_or(Lang::Ru);
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
            store.write(&tenant, |c| {
                let Some(r) = rights_requests::get(c, &claims.request_id)? else {
                    return Ok(None);
                };
                let exportable = matches!(r.kind(), RequestType::Access | RequestType::Portability)
                    && r.status() == RequestStatus::Completed;
                // After an erasure there is nothing left to give, and the link says so
                // like any other dead link.
                let erased = assent_store::tables::subjects::facts(c, &r.subject_id)?
                    .is_none_or(|f| f.erased_at.is_some());
                if !exportable || erased {
                    return Ok(None);
                }
                let doc = match export::subject_export(
                    c,
                    &keyring.tenant,
                    &tenant,
                    keyring.group_id(),
                    &r.subject_id,
                    now,
                ) {
                    Ok(doc) => doc,
                    Err(StoreError::NotFound) => return Ok(None),
                    Err(e) => return Err(e),
                };
                audit::record(
                    c,
                    &tenant,
                    &format!("link:{}", r.id),
                    "subject.export",
                    Some(&r.subject_id),
                )?;
                Ok(Some(doc))
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
