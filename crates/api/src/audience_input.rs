//! The audience of a campaign or a survey's invitations, as the API takes it.

use assent_core::tenancy::Locale;
use assent_store::flows::campaigns::Audience;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceIn {
    /// Further purposes whose consent must be in force besides the campaign's (or the
    /// survey's) own.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// `ru`, `en`: the person's language, else the company's. Empty: all.
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::LocaleName>)]
    pub locales: Vec<Locale>,
    /// Subjects carrying any of these tags (at most 20). Empty: no narrowing.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
    /// Only these subjects (at most 10,000). Empty: everyone the rest allows.
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub subject_ids: Vec<String>,
}

impl From<AudienceIn> for Audience {
    fn from(a: AudienceIn) -> Self {
        Self {
            purposes: a.purposes,
            locales: a.locales,
            tags: a.tags,
            subject_ids: a.subject_ids,
        }
    }
}
