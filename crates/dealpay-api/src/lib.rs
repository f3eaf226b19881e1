//! The DealPayment API: types, admission rules, CRD generation and validation.

pub mod admission;
mod class;
pub mod money;
mod reason;
pub mod receipt;
pub mod rules;
pub mod schema;
mod time;
pub mod types;
pub mod validate;

pub use class::ErrorClass;
pub use reason::{ConditionType, Reason};
pub use receipt::{PaymentReceipt, PaymentReceiptSpec, PaymentReceiptStatus, ReceiptState};
pub use schema::{crd, crd_yaml, receipt_crd_yaml};
pub use time::Time;
pub use types::*;
pub use validate::{validate_spec, validate_update};
