//! Workflows: each composes tables in the caller's unit of work, so what one step
//! of the domain changes commits or fails together. Flows may use tables and lower
//! flows, never in a circle; from the bottom: `webhook_events`, `registry`, `backlog`, `calendars` and
//! `subject_records`; `consents`; `outbox_gate`, `refusal`, `rights_record` and
//! `ledger_audit` (on consents); `bulk_import` (on consents); `send_notice` (on the outbox gate); `erasure`;
//! `rights` and `staff_steps`; `subscribing`, `surveying` and `invitations` (on the
//! outbox gate); `campaigns` (on webhook events and the outbox gate); `reconsent` (on campaigns and consents); `disclosing` (on consents and calendars); `processing_records` (on disclosing); `incidents` (on webhook events, campaigns and processing records); and `export`, which reads what all of them keep.

pub mod backlog;
pub mod bulk_import;
pub mod calendars;
pub mod campaigns;
pub mod consent_documents;
pub mod consents;
pub mod disclosing;
pub mod erasure;
pub mod export;
pub mod incidents;
pub mod invitations;
pub mod ledger_audit;
pub mod outbox_gate;
pub mod processing_records;
pub mod reconsent;
pub mod refusal;
pub mod registry;
pub mod rights;
pub mod rights_record;
pub mod send_notice;
pub mod staff_steps;
pub mod subject_records;
pub mod subscribing;
pub mod surveying;
pub mod webhook_events;
pub mod website;
