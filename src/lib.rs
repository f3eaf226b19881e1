//! dealpay-operator: pays Tencent Cloud orders declared as Kubernetes `DealPayment` resources.

pub mod api;
pub mod cli;
pub mod controller;
pub mod driver;
pub mod engine;
pub mod pay;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod tencent;
