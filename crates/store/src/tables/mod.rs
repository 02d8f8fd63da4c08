//! One module per table (or tight group of tables), each knowing only the schema
//! and the shared infrastructure: never a sibling table and never a flow, so a
//! table's queries can be read on their own. Workflows that touch several tables
//! are in [`crate::flows`]; `conventions` below keeps it that way.

pub mod api_keys;
pub mod audit;
pub mod banners;
pub mod branding;
pub mod calendar_years;
pub mod campaigns;
pub mod check_facts;
pub mod consent_documents;
pub mod decoys;
pub mod destruction_acts;
pub mod disclosures;
pub mod form_limits;
pub mod idempotency;
pub mod imports;
pub mod incidents;
pub mod job_schedule;
pub mod ledger;
pub mod notifications;
pub mod policies;
pub mod processing_records;
pub mod purposes;
pub mod recipients;
pub mod rights_requests;
pub mod settings;
pub mod subject_tags;
pub mod subjects;
pub mod subscriptions;
pub mod suppressions;
pub mod surveys;
pub mod telegram;
pub mod telegram_send_slots;
pub mod templates;
pub mod tenants;
pub mod visitor_choices;
pub mod webhooks;
