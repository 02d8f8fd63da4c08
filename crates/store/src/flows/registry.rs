//! Opening a tenant (its row, then its ledger head inside its own scope), and the
//! installation-wide report of purpose codes that clash inside a group.

use crate::schema::tenants;
use crate::tables::ledger;
use crate::tables::purposes::{Clash, Company, clashes_of};
use crate::tables::tenants::{NewTenant, Tenant, find_group, find_tenant_by_slug};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::problem::ProblemCode;
use diesel::prelude::*;

pub fn create_tenant(conn: &mut DbConnection, new: NewTenant) -> StoreResult<Tenant> {
    if let Some(group) = &new.group_id
        && find_group(conn, group)?.is_none()
    {
        return Err(StoreError::refused(
            ProblemCode::UnknownGroup,
            format!("no tenant group with id '{group}'"),
        ));
    }
    if find_tenant_by_slug(conn, &new.slug)?.is_some() {
        return Err(StoreError::refused(
            ProblemCode::AlreadyExists,
            format!("the slug '{}' is taken", new.slug),
        ));
    }
    let tenant = Tenant {
        id: assent_core::id::new_id().into(),
        slug: new.slug,
        legal_name: new.legal_name,
        group_id: new.group_id.map(Into::into),
        jurisdiction: new.jurisdiction,
        timezone: new.timezone,
        default_locale: new.default_locale,
        created_at: crate::now(),
    };
    diesel::insert_into(tenants::table)
        .values(&tenant)
        .execute(conn)?;
    // The ledger head is a tenant row: write it within the new tenant's scope.
    crate::store::scope_to_tenant(conn, &tenant.id, tenant.group_id.as_deref())?;
    ledger::init_head(conn, &tenant.id)?;
    Ok(tenant)
}

/// Every clash of the installation, by group and code: each company of a group is
/// read in its own unit of work (its own purposes are visible only there).
pub fn clashes(store: &crate::Store) -> StoreResult<Vec<Clash>> {
    let all = store.system(crate::tables::tenants::list_tenants)?;
    let company = |id: &str| Company {
        id: id.to_owned(),
        slug: all
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| id.to_owned(), |t| t.slug.clone()),
    };
    let mut found: std::collections::BTreeMap<(String, String), Clash> = Default::default();
    for tenant in &all {
        let Some(group_id) = &tenant.group_id else {
            continue;
        };
        let codes = store.read(&tenant.id, |c| clashes_of(c, &tenant.id, group_id))?;
        for (code, owner) in codes {
            found
                .entry((group_id.to_string(), code.clone()))
                .or_insert_with(|| Clash {
                    group_id: group_id.to_string(),
                    code,
                    group_owner: owner.as_deref().map(company),
                    companies: Vec::new(),
                })
                .companies
                .push(company(&tenant.id));
        }
    }
    Ok(found.into_values().collect())
}
