//! A visitor's answer to the banner or a consent form, settled against the version
//! they were shown: what is granted, what refused, and what Global Privacy Control
//! changed.

use super::{Category, Published};
use crate::tenancy::InvalidValue;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

text_enum!(
    /// How the visitor answered: the banner's three buttons, or a consent form.
    ChoiceKind, "choice kind" {
        Accept => "accept",
        Reject => "reject",
        Customise => "customise",
        Form => "form",
    }
);

/// A banner answer, settled: the categories granted and refused (bit sets over
/// [`Category::bit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub granted: i32,
    pub refused: i32,
    /// GPC was on: marketing is refused whatever was clicked.
    pub gpc: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("unknown category '{0}': this banner asks about {1}")]
    UnknownCategory(String, String),
    #[error("'{0}' cookies need no consent and cannot be granted or refused")]
    NotAConsent(String),
    #[error("this banner has no form '{0}'")]
    UnknownForm(String),
    #[error("form '{form}' does not ask for purpose '{purpose}'")]
    UnknownFormPurpose { form: String, purpose: String },
    #[error("form '{form}' requires consent to '{purpose}'")]
    RequiredMissing { form: String, purpose: String },
    #[error("a banner choice names no form; a form choice has kind 'form'")]
    KindMismatch,
    #[error("'{0}' is listed twice")]
    Duplicate(String),
}

/// Settles a banner answer. `accept` grants every category the banner asks about,
/// `reject` none, `customise` exactly `granted`; with GPC on, marketing (the sale and
/// sharing GPC refuses) is refused whatever was clicked.
pub fn settle_banner(
    banner: &Published,
    kind: ChoiceKind,
    granted: &[String],
    gpc: bool,
) -> Result<Settled, ChoiceError> {
    let offered: Vec<Category> = banner.categories().filter(|c| c.is_consent()).collect();
    let offered_mask = Category::mask_of(offered.iter().copied());
    let named = named_categories(banner, granted)?;
    let mut mask = match kind {
        ChoiceKind::Accept => offered_mask,
        ChoiceKind::Reject => 0,
        ChoiceKind::Customise => named,
        ChoiceKind::Form => return Err(ChoiceError::KindMismatch),
    };
    if gpc {
        mask &= !Category::Marketing.bit();
    }
    Ok(Settled {
        granted: mask,
        refused: offered_mask & !mask,
        gpc,
    })
}

fn named_categories(banner: &Published, granted: &[String]) -> Result<i32, ChoiceError> {
    let mut mask = 0;
    for code in granted {
        let Some(c) = code
            .parse::<Category>()
            .ok()
            .filter(|c| banner.categories().any(|b| b == *c))
        else {
            let asked: Vec<&str> = banner.categories().map(Category::as_str).collect();
            return Err(ChoiceError::UnknownCategory(code.clone(), asked.join(", ")));
        };
        if !c.is_consent() {
            return Err(ChoiceError::NotAConsent(code.clone()));
        }
        if mask & c.bit() != 0 {
            return Err(ChoiceError::Duplicate(code.clone()));
        }
        mask |= c.bit();
    }
    Ok(mask)
}

/// A form answer, settled: for each consent the form asks, whether it was given.
pub fn settle_form<'a>(
    banner: &'a Published,
    form: &str,
    granted: &[String],
) -> Result<Vec<(&'a super::FormConsent, bool)>, ChoiceError> {
    let items = banner
        .forms
        .get(form)
        .ok_or_else(|| ChoiceError::UnknownForm(form.to_owned()))?;
    for (i, p) in granted.iter().enumerate() {
        if !items.iter().any(|c| &c.purpose == p) {
            return Err(ChoiceError::UnknownFormPurpose {
                form: form.to_owned(),
                purpose: p.clone(),
            });
        }
        if granted[..i].contains(p) {
            return Err(ChoiceError::Duplicate(p.clone()));
        }
    }
    let answered: Vec<_> = items
        .iter()
        .map(|c| (c, granted.contains(&c.purpose)))
        .collect();
    if let Some((c, _)) = answered.iter().find(|(c, given)| c.required && !given) {
        return Err(ChoiceError::RequiredMissing {
            form: form.to_owned(),
            purpose: c.purpose.clone(),
        });
    }
    Ok(answered)
}

/// The address kept as evidence: IPv4 to its /24, IPv6 to its /48 — enough to show
/// where an answer came from, not enough to single out a device.
pub fn truncate_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0")
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return truncate_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::banner::{PublishedCategory, Texts};
    use std::collections::BTreeMap;

    fn banner(cats: &[Category]) -> Published {
        Published {
            categories: cats
                .iter()
                .map(|c| PublishedCategory {
                    code: *c,
                    purpose: c.is_consent().then(|| format!("web_{c}")),
                })
                .collect(),
            text: BTreeMap::<crate::locale::Locale, Texts>::new(),
            policy_url: None,
            forms: BTreeMap::new(),
        }
    }

    fn all() -> Published {
        banner(&[
            Category::Necessary,
            Category::Analytics,
            Category::Marketing,
            Category::Personalisation,
        ])
    }

    #[test]
    fn accept_grants_what_the_banner_asks_and_reject_refuses_it() {
        let b = banner(&[Category::Necessary, Category::Analytics]);
        let a = settle_banner(&b, ChoiceKind::Accept, &[], false).unwrap();
        assert_eq!((a.granted, a.refused), (1, 0));
        let r = settle_banner(&b, ChoiceKind::Reject, &[], false).unwrap();
        assert_eq!((r.granted, r.refused), (0, 1));
    }

    #[test]
    fn gpc_refuses_marketing_even_on_accept_all() {
        let s = settle_banner(&all(), ChoiceKind::Accept, &[], true).unwrap();
        assert_eq!(s.granted, 1 | 4);
        assert_eq!(s.refused, 2);
        let c = settle_banner(&all(), ChoiceKind::Customise, &["marketing".into()], true).unwrap();
        assert_eq!((c.granted, c.refused), (0, 7));
    }

    #[test]
    fn customise_names_only_the_banners_optional_categories_once() {
        let b = banner(&[Category::Necessary, Category::Analytics]);
        assert!(matches!(
            settle_banner(&b, ChoiceKind::Customise, &["marketing".into()], false),
            Err(ChoiceError::UnknownCategory(..))
        ));
        assert!(matches!(
            settle_banner(&b, ChoiceKind::Customise, &["cookies".into()], false),
            Err(ChoiceError::UnknownCategory(..))
        ));
        assert!(matches!(
            settle_banner(&b, ChoiceKind::Customise, &["necessary".into()], false),
            Err(ChoiceError::NotAConsent(_))
        ));
        assert!(matches!(
            settle_banner(
                &b,
                ChoiceKind::Customise,
                &["analytics".into(), "analytics".into()],
                false
            ),
            Err(ChoiceError::Duplicate(_))
        ));
        assert_eq!(
            settle_banner(&b, ChoiceKind::Form, &[], false),
            Err(ChoiceError::KindMismatch)
        );
    }

    #[test]
    fn addresses_are_kept_truncated() {
        assert_eq!(truncate_ip("203.0.113.77".parse().unwrap()), "203.0.113.0");
        assert_eq!(
            truncate_ip("2001:db8:abcd:12:1:2:3:4".parse().unwrap()),
            "2001:db8:abcd::"
        );
        assert_eq!(
            truncate_ip("::ffff:198.51.100.9".parse().unwrap()),
            "198.51.100.0"
        );
    }
}
