//! What the public pages show of a company and what changes rarely: its name and
//! language, branding, its group's name, the policy in force. Kept a few seconds per
//! process, so a page reads only the person's own rows. A change made through this
//! process's API is seen at once ([`TenantPages::forget`]), and so is one announced by
//! another process on PostgreSQL; otherwise within [`TTL`].

use super::Brand;
use assent_core::locale::Locale;
use assent_store::tables::{branding, policies, tenants};
use assent_store::{StoreResult, Tx};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a company's page frame is reused.
pub const TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct TenantPage {
    pub default_locale: Locale,
    pub brand: Brand,
    pub group_name: Option<String>,
    /// The version and URL of the policy in force when read.
    pub policy: Option<(String, Option<String>)>,
}

#[derive(Default)]
pub struct TenantPages {
    entries: RwLock<HashMap<String, (Instant, Arc<TenantPage>)>>,
}

impl TenantPages {
    /// The company's page frame, read in `c` when not known or older than [`TTL`];
    /// `None` for an unknown tenant.
    pub fn get(
        &self,
        c: &mut Tx<'_>,
        tenant_id: &str,
        group_id: Option<&str>,
    ) -> StoreResult<Option<Arc<TenantPage>>> {
        if let Some((at, page)) = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            && at.elapsed() < TTL
        {
            return Ok(Some(page.clone()));
        }
        let Some(tenant) = tenants::find_tenant(c, tenant_id)? else {
            return Ok(None);
        };
        let group_name = match group_id {
            Some(g) => tenants::find_group(c, g)?.map(|g| g.name),
            None => None,
        };
        let policy = policies::in_force(c, tenant_id, chrono::Utc::now().naive_utc())?
            .map(|p| (p.version, p.url));
        let page = Arc::new(TenantPage {
            default_locale: tenant.default_locale,
            brand: Brand::of(&tenant.legal_name, branding::get(c, tenant_id)?),
            group_name,
            policy,
        });
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant_id.to_owned(), (Instant::now(), page.clone()));
        Ok(Some(page))
    }

    /// Drops every company's frame (changes may have been missed).
    pub fn forget_all(&self) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Drops what is kept of a company after a change to it (through this process, or
    /// announced by another).
    pub fn forget(&self, tenant_id: &str) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant_id);
    }
}
