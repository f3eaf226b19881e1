//! The wire: TC3 signing, the Billing API client, its models and its errors.

mod args;
pub mod client;
pub mod credentials;
pub mod error;
pub mod limiter;
pub mod models;
pub mod sign;

pub use args::ClientArgs;
pub use client::{Client, ClientConfig, PAY_SEND_FENCE};
pub use credentials::{Credentials, Secret};
pub use error::{ApiError, CallError, ErrorClass};
