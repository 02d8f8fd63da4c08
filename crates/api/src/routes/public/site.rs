//! Each company's website banner as the script's endpoints need it, kept a few
//! seconds per process: the configuration is read on every page view of every
//! visitor, so it is served from memory, ready as bytes with its ETag. A change
//! through this process's API is seen at once ([`Websites::forget`]), one announced
//! by another process on PostgreSQL too; otherwise within [`TTL`].

use assent_core::banner::Category;
use assent_core::locale::Locale;
use assent_store::flows::website::{self, Banner};
use assent_store::tables::tenants;
use assent_store::{Store, StoreResult};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a company's banner is reused.
pub const TTL: Duration = Duration::from_secs(5);
/// Companies kept at most (each a few kilobytes); beyond, the oldest go.
const MAX_SITES: usize = 10_000;

#[derive(Debug)]
pub struct Site {
    pub tenant_id: String,
    pub group_id: Option<String>,
    pub default_locale: Locale,
    pub banner: Arc<Banner>,
    /// The configuration the script reads, as sent.
    pub config: actix_web::web::Bytes,
    pub etag: String,
}

#[derive(Serialize)]
struct CategoryOut {
    code: Category,
    required: bool,
}

#[derive(Serialize)]
struct FormOut<'a> {
    consents: &'a [assent_core::banner::FormConsent],
}

#[derive(Serialize)]
struct ConfigOut<'a> {
    version: i32,
    hash: &'a str,
    default_lang: Locale,
    policy_url: Option<&'a str>,
    categories: Vec<CategoryOut>,
    text: &'a BTreeMap<Locale, assent_core::banner::Texts>,
    forms: BTreeMap<&'a str, FormOut<'a>>,
}

fn config_of(b: &Banner, default_lang: Locale) -> Vec<u8> {
    let p = &b.published;
    let out = ConfigOut {
        version: b.version,
        hash: &b.hash,
        default_lang,
        policy_url: p.policy_url.as_deref(),
        categories: p
            .categories
            .iter()
            .map(|c| CategoryOut {
                code: c.code,
                required: !c.code.is_consent(),
            })
            .collect(),
        text: &p.text,
        forms: p
            .forms
            .iter()
            .map(|(code, consents)| (code.as_str(), FormOut { consents }))
            .collect(),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

#[derive(Default)]
pub struct Websites {
    /// By slug; `None`: no such company, or no banner (so a made-up slug costs the
    /// database one read per [`TTL`], not one per request).
    entries: RwLock<HashMap<String, Entry>>,
}

/// When a slug was read, and what it led to.
type Entry = (Instant, Option<Arc<Site>>);

impl Websites {
    /// The company with `slug` and its banner in force; `None` when there is no such
    /// company or it has published no banner.
    pub fn get(&self, store: &Store, slug: &str) -> StoreResult<Option<Arc<Site>>> {
        if let Some((at, site)) = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(slug)
            && at.elapsed() < TTL
        {
            return Ok(site.clone());
        }
        if assent_core::tenancy::validate_slug(slug).is_err() {
            return Ok(None);
        }
        let site = self.load(store, slug)?;
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_SITES {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        if site.is_some() || entries.len() < MAX_SITES {
            entries.insert(slug.to_owned(), (Instant::now(), site.clone()));
        }
        Ok(site)
    }

    fn load(&self, store: &Store, slug: &str) -> StoreResult<Option<Arc<Site>>> {
        let Some(tenant) = store.system(|c| tenants::find_tenant_by_slug(c, slug))? else {
            return Ok(None);
        };
        let tenant_id = tenant.id.to_string();
        let Some(banner) = store.read(&tenant_id, |c| website::latest(c, &tenant_id))? else {
            return Ok(None);
        };
        let config = config_of(&banner, tenant.default_locale);
        let etag = format!(
            "\"{}\"",
            &hex::encode(assent_core::crypto::sha256(&config))[..32]
        );
        let site = Arc::new(Site {
            tenant_id,
            group_id: tenant.group_id.map(|g| g.to_string()),
            default_locale: tenant.default_locale,
            banner: Arc::new(banner),
            config: config.into(),
            etag,
        });
        Ok(Some(site))
    }

    /// Drops a company's banner after a change to it, and every "no banner" (the
    /// company may have just published its first).
    pub fn forget(&self, tenant_id: &str) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (_, s)| s.as_ref().is_some_and(|s| s.tenant_id != tenant_id));
    }

    pub fn forget_all(&self) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
