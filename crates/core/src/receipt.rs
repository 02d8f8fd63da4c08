//! Consent receipts in the shape of the Kantara Initiative Consent Receipt 1.1
//! (the basis of ISO/IEC TS 27560): what was agreed or withdrawn, with whom, when,
//! how, and under which policy. The subject appears only by pseudonym.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

pub const VERSION: &str = "KI-CR-v1.1.0";

#[derive(Debug, Clone)]
pub struct ReceiptInput<'a> {
    pub receipt_id: &'a str,
    pub event_id: &'a str,
    pub issued_at: DateTime<Utc>,
    pub jurisdiction: &'a str,
    pub language: &'a str,
    pub controller_name: &'a str,
    pub policy_url: Option<&'a str>,
    pub policy_version: Option<&'a str>,
    pub collection_method: &'a str,
    pub actor_kind: &'a str,
    /// A stable identifier that is not personal data (the subject id).
    pub subject_pseudonym: &'a str,
    pub action: &'a str,
    pub purpose_code: &'a str,
    pub purpose_version: i32,
    pub purpose_name: &'a str,
    pub legal_basis: &'a str,
    pub data_categories: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
    /// The consent document agreed to (152-FZ art. 9): its version, digest and
    /// fields, shown as the extension `consentDocument`.
    pub consent_document: Option<ReceiptDocument<'a>>,
}

#[derive(Debug, Clone)]
pub struct ReceiptDocument<'a> {
    pub version: i32,
    pub sha256: &'a str,
    pub document: &'a crate::consent_document::ConsentDocument,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn consent_receipt(r: &ReceiptInput<'_>) -> Value {
    let termination = match (r.action, r.expires_at) {
        ("withdraw", _) => "Consent withdrawn".to_owned(),
        (_, Some(t)) => format!("Expires {}; may be withdrawn at any time", time(t)),
        _ => "Until withdrawn; may be withdrawn at any time".to_owned(),
    };
    let document = r.consent_document.as_ref().map(|d| {
        json!({
            "version": d.version,
            "sha256": d.sha256,
            "document": d.document,
        })
    });
    let mut receipt = json!({
        "version": VERSION,
        "jurisdiction": r.jurisdiction,
        "consentTimestamp": r.issued_at.timestamp(),
        "consentTimestampISO": time(r.issued_at),
        "collectionMethod": r.collection_method,
        "consentReceiptID": r.receipt_id,
        "eventID": r.event_id,
        "action": r.action,
        "actor": r.actor_kind,
        "language": r.language,
        "piiPrincipalId": r.subject_pseudonym,
        "piiControllers": [{ "piiController": r.controller_name, "onBehalf": false }],
        "policyUrl": r.policy_url,
        "policyVersion": r.policy_version,
        "services": [{
            "service": r.purpose_code,
            "purposes": [{
                "purpose": r.purpose_name,
                "purposeCode": r.purpose_code,
                "purposeVersion": r.purpose_version,
                "purposeCategory": [r.legal_basis],
                "consentType": "EXPLICIT",
                "piiCategory": r.data_categories,
                "primaryPurpose": true,
                "termination": termination,
                "thirdPartyDisclosure": false,
            }],
        }],
        "sensitive": false,
        "spiCat": [],
    });
    if let Some(d) = document {
        receipt["consentDocument"] = d;
    }
    receipt
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn receipt_carries_the_kantara_fields() {
        let categories = vec!["email".to_owned()];
        let input = ReceiptInput {
            receipt_id: "r1",
            event_id: "e1",
            issued_at: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
            jurisdiction: "ru-152fz",
            language: "ru",
            controller_name: "ООО «Ромашка»",
            policy_url: Some("https://example.org/privacy"),
            policy_version: Some("2026-01"),
            collection_method: "web_form",
            actor_kind: "guardian",
            subject_pseudonym: "s1",
            action: "grant",
            purpose_code: "news",
            purpose_version: 2,
            purpose_name: "Рассылка",
            legal_basis: "consent",
            data_categories: &categories,
            expires_at: None,
            consent_document: None,
        };
        let r = consent_receipt(&input);
        for field in [
            "version",
            "jurisdiction",
            "consentTimestamp",
            "collectionMethod",
            "consentReceiptID",
            "language",
            "piiPrincipalId",
            "piiControllers",
            "policyUrl",
            "services",
            "sensitive",
            "spiCat",
        ] {
            assert!(r.get(field).is_some(), "missing {field}");
        }
        assert_eq!(r["consentTimestamp"], 1_772_355_600);
        assert_eq!(r["services"][0]["purposes"][0]["purposeVersion"], 2);
        assert_eq!(
            r["services"][0]["purposes"][0]["termination"],
            "Until withdrawn; may be withdrawn at any time"
        );
        let withdrawn = consent_receipt(&ReceiptInput {
            action: "withdraw",
            ..input
        });
        assert_eq!(
            withdrawn["services"][0]["purposes"][0]["termination"],
            "Consent withdrawn"
        );
    }
}
