//! The controller's one error type, with a low-cardinality category for metrics and events.

/// Failures of the Kubernetes shell (Tencent API errors are outcomes the engine folds, not errors here).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The DealPayment changed since it was read; nothing was written and nothing was paid.
    #[error("the DealPayment changed since it was read; nothing was written or paid")]
    Conflict,
    /// A new attempt would spend more than the namespace budget has left: nothing was written or paid.
    #[error("namespace budget: {0}")]
    OverBudget(String),
    /// The object has no namespace or name.
    #[error("object without namespace or name")]
    MissingMetadata,
    /// `dealpay pay` could not write its state file (nothing is paid without the write-ahead record).
    #[error("state file: {0}")]
    StateFile(String),
    /// Serialising the status failed.
    #[error("serialise status: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Error {
    /// Label for metrics and events.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(kube::Error::Api(_)) => "kube_api",
            Self::Kube(_) => "kube_transport",
            Self::Conflict => "conflict",
            Self::OverBudget(_) => "over_budget",
            Self::MissingMetadata => "metadata",
            Self::Serialize(_) => "serialize",
            Self::StateFile(_) => "state_file",
        }
    }
}
