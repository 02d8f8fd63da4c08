//! Filling templates outside a send: the sample values of previews and the check a
//! campaign's template must pass (it exists in the locale and renders with the
//! campaign's data). Shared by the template and campaign routes.

use assent_notify::templates::{TemplateSet, Templates};
use assent_store::flows::campaigns::TemplateProblem;
use assent_store::tables::templates::StoredTemplate;
use std::sync::Arc;

pub fn to_set(t: StoredTemplate) -> TemplateSet {
    TemplateSet {
        subject: t.subject,
        text: t.text_body,
        html: t.html_body,
    }
}

pub fn sample_context(
    kind: &str,
    tenant_name: &str,
    locale: &str,
    data: &serde_json::Value,
) -> serde_json::Value {
    let mut ctx = assent_notify::templates::sample_context(kind, locale);
    ctx["tenant"]["name"] = tenant_name.into();
    ctx["locale"] = locale.into();
    ctx["data"] = if data.is_null() {
        serde_json::json!({})
    } else {
        data.clone()
    };
    ctx
}

/// Checks a template for a campaign: it exists in the locale (uploaded or built
/// in) and renders with the campaign's data.
pub fn template_check(
    templates: Arc<Templates>,
    tenant_name: String,
) -> impl Fn(&str, &str, Option<StoredTemplate>, &serde_json::Value) -> Result<(), TemplateProblem>
{
    move |kind, locale, stored, data| {
        let set = stored.map(to_set);
        if set.is_none() && Templates::builtin(kind, locale).is_none() {
            return Err(TemplateProblem::Missing);
        }
        let ctx = sample_context(kind, &tenant_name, locale, data);
        templates
            .render(kind, locale, set.as_ref(), &ctx)
            .map(|_| ())
            .map_err(|e| TemplateProblem::Invalid(e.to_string()))
    }
}
