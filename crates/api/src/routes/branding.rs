//! How the tenant's public pages look: display name, accent colour, logo.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{get, put, web};
use assent_core::branding;
use assent_core::tenancy::Permission;
use assent_store::tables::branding::{self as repo, Branding};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingBody {
    /// The name people see; the legal name when `null`.
    #[schema(
        max_length = 120,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub display_name: Option<String>,
    /// `#rrggbb`; must reach 4.5:1 contrast with white button text (WCAG AA).
    #[schema(pattern = r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    pub accent_color: Option<String>,
    /// A PNG, JPEG, GIF or WebP image, base64, at most 48 KiB.
    #[schema(
        max_length = 65536,
        pattern = r"^(iVBORw0KGg[o-r][A-Za-z0-9+/]|/9j/|R0lGODdh|R0lGODlh)([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    pub logo_base64: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BrandingView {
    pub display_name: Option<String>,
    pub accent_color: Option<String>,
    /// The sniffed media type of the stored logo.
    pub logo_type: Option<String>,
    pub logo_base64: Option<String>,
}

impl From<Branding> for BrandingView {
    fn from(b: Branding) -> Self {
        let (logo_type, logo) = b.logo.unzip();
        Self {
            display_name: b.display_name,
            accent_color: b.accent_color,
            logo_type,
            logo_base64: logo.map(|l| STANDARD.encode(l)),
        }
    }
}

/// The branding of the public pages.
#[utoipa::path(tag = "tenancy", security(("bearer" = [])), responses((status = 200, body = BrandingView)))]
#[get("/branding")]
pub async fn get_branding(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<BrandingView>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let b = state
        .db(move |store| store.read(&tenant, |c| repo::get(c, &tenant)))
        .await?;
    Ok(web::Json(b.into()))
}

/// Replace the branding of the public pages.
#[utoipa::path(tag = "tenancy", security(("bearer" = [])), request_body = BrandingBody, responses(
    (status = 200, body = BrandingView),
    crate::error::Problems,
))]
#[put("/branding")]
pub async fn put_branding(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<BrandingBody>,
) -> ApiResult<web::Json<BrandingView>> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    let display_name = match b.display_name.map(|n| n.trim().to_owned()) {
        Some(n) if n.is_empty() || n.chars().count() > 120 => {
            return Err(ApiError::invalid(
                "display_name must have 1 to 120 characters",
            ));
        }
        other => other,
    };
    let accent_color = b
        .accent_color
        .as_deref()
        .map(branding::validate_accent)
        .transpose()
        .map_err(|e| ApiError::invalid(e.0))?
        .map(|c| c.to_hex());
    let logo = match b.logo_base64 {
        None => None,
        Some(text) => {
            let bytes = STANDARD
                .decode(text.trim())
                .map_err(|_| ApiError::invalid("logo_base64 is not valid base64"))?;
            let kind = branding::logo_media_type(&bytes).map_err(|e| ApiError::invalid(e.0))?;
            Some((kind.to_owned(), bytes))
        }
    };
    let new = Branding {
        display_name,
        accent_color,
        logo,
    };
    let tenant = principal.tenant_id;
    let saved = new.clone();
    let changed = tenant.clone();
    state
        .db(move |store| store.write(&tenant, |c| repo::put(c, &tenant, &saved)))
        .await?;
    state.tenant_pages.forget(&changed);
    Ok(web::Json(new.into()))
}
