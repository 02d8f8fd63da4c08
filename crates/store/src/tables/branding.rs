//! A tenant's look on its public pages (see `assent_core::branding` for the rules).

use crate::schema::tenant_branding;
use crate::{DbConnection, StoreResult};
use diesel::prelude::*;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// The name shown to people; the legal name when absent.
    pub display_name: Option<String>,
    /// `#rrggbb`, already checked for contrast.
    pub accent_color: Option<String>,
    /// The media type and bytes of the logo, already sniffed.
    pub logo: Option<(String, Vec<u8>)>,
}

type Row = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

pub fn get(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Branding> {
    let row: Option<Row> = tenant_branding::table
        .find(tenant_id)
        .select((
            tenant_branding::display_name,
            tenant_branding::accent_color,
            tenant_branding::logo_type,
            tenant_branding::logo,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => Branding::default(),
        Some((display_name, accent_color, logo_type, logo)) => Branding {
            display_name,
            accent_color,
            logo: logo_type.zip(logo),
        },
    })
}

/// Replaces the branding as a whole.
pub fn put(conn: &mut DbConnection, tenant_id: &str, b: &Branding) -> StoreResult<()> {
    let now = crate::now();
    let (logo_type, logo) = b.logo.clone().unzip();
    let updated = diesel::update(tenant_branding::table.find(tenant_id))
        .set((
            tenant_branding::display_name.eq(&b.display_name),
            tenant_branding::accent_color.eq(&b.accent_color),
            tenant_branding::logo_type.eq(&logo_type),
            tenant_branding::logo.eq(&logo),
            tenant_branding::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(tenant_branding::table)
            .values((
                tenant_branding::tenant_id.eq(tenant_id),
                tenant_branding::display_name.eq(&b.display_name),
                tenant_branding::accent_color.eq(&b.accent_color),
                tenant_branding::logo_type.eq(&logo_type),
                tenant_branding::logo.eq(&logo),
                tenant_branding::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    let change = crate::changes::Change::Tenant(tenant_id.to_owned());
    crate::changes::announce(conn, &change)
}
