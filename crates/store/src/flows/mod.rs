//! Workflows: each composes tables in the caller's unit of work, so what one step
//! of the domain changes commits or fails together. Flows may use tables and lower
//! flows, never in a circle; from the bottom: `webhook_events` and `registry`;
//! `consents`; `outbox_gate`, `rights_record` and `ledger_audit` (on consents);
//! `erasure`; `rights`; `subscribing` and `surveying` (on the outbox gate); and
//! `export`, which reads what all of them keep.

pub mod consents;
pub mod erasure;
pub mod export;
pub mod ledger_audit;
pub mod outbox_gate;
pub mod registry;
pub mod rights;
pub mod rights_record;
pub mod subscribing;
pub mod surveying;
pub mod webhook_events;
