//! Domain types and rules of Assent. No I/O: everything here is a pure function or a
//! value type, so the rules can be tested without a database or a network.

pub mod access_token;
pub mod api_key;
pub mod consent;
pub mod contact;
pub mod crypto;
pub mod id;
pub mod ledger;
pub mod page;
pub mod pii;
pub mod receipt;
pub mod tenancy;
