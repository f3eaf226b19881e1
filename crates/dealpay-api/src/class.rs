//! What an error meant for the payment, as status records it. The wire crate has its own classifier;
//! the engine maps its answer here, so the CRD does not depend on the wire.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an error means for the next step of a payment (`status.lastError.class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ErrorClass {
    /// The request is wrong; nothing changes until the spec does.
    Terminal,
    /// A person must act (top up, grant permission, fix credentials); retry slowly.
    NeedsHuman,
    /// Rejected before processing (or never sent); safe to send again soon.
    Transient,
    /// Money moved but delivery failed; never pay again.
    ChargedNotDelivered,
    /// The request may or may not have been processed; look the orders up before anything else.
    OutcomeUnknown,
}

impl ErrorClass {
    /// The serialised name, also the label for metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Terminal => "Terminal",
            Self::NeedsHuman => "NeedsHuman",
            Self::Transient => "Transient",
            Self::ChargedNotDelivered => "ChargedNotDelivered",
            Self::OutcomeUnknown => "OutcomeUnknown",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
