//! dealpay-operator: pays Tencent Cloud orders declared as Kubernetes `DealPayment` resources.
//!
//! This crate is the Kubernetes shell and the CLI; the layers below it are their own crates
//! (docs/architecture.md), re-exported under their old module names so `crate::api::…` reads the same.

pub use dealpay_api as api;
pub use dealpay_engine as engine;
#[cfg(feature = "sandbox")]
pub use dealpay_sandbox as sandbox;
pub use tencent_billing as tencent;

pub mod cli;
pub mod controller;
pub mod driver;
pub mod pay;
