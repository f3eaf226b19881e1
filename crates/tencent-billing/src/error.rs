//! Every Tencent Billing error code the operator knows, and what each one means for a payment.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What an error means for the next step of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Low-cardinality label for metrics, events and status.
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

/// The class table: one place, table-tested.
pub fn classify(code: &str) -> ErrorClass {
    use ErrorClass::*;
    match code {
        "InvalidParameter"
        | "InvalidParameterValue"
        | "MissingParameter"
        | "UnknownParameter"
        | "FailedOperation.InvalidVoucher"
        | "FailedOperation.NeedPayTogether"
        | "FailedOperation.NeedPayTogeter"
        | "FailedOperation.AgentPayDealCannotDown"
        | "FailedOperation.InvalidDeal"
        | "InvalidAction"
        | "NoSuchVersion"
        | "UnsupportedOperation" => Terminal,
        "FailedOperation.BalanceInsufficient"
        | "FailedOperation.PayPriceError"
        | "UnauthorizedOperation"
        | "UnauthorizedOperation.CamNoAuth"
        | "UnauthorizedOperation.CertificationNeedUpgrade"
        | "UnauthorizedOperation.NotCertification"
        | "UnauthorizedOperation.NotFinanceAuth"
        | "AuthFailure.SecretIdNotFound"
        | "AuthFailure.SignatureFailure"
        | "AuthFailure.InvalidSecretId"
        | "AuthFailure.TokenFailure"
        | "AuthFailure.MFAFailure"
        | "LimitExceeded" => NeedsHuman,
        "RequestLimitExceeded" | "AuthFailure.SignatureExpire" => Transient,
        c if c.starts_with("RequestLimitExceeded.") => Transient,
        // Any other authentication failure was refused before processing and needs new credentials.
        c if c == "AuthFailure" || c.starts_with("AuthFailure.") => NeedsHuman,
        // Sub-codes of the parameter families are as wrong as their parents.
        c if c.starts_with("InvalidParameter.")
            || c.starts_with("InvalidParameterValue.")
            || c.starts_with("MissingParameter.")
            || c.starts_with("UnknownParameter.")
            || c.starts_with("UnsupportedOperation.") =>
        {
            Terminal
        }
        "FailedOperation.PaySuccDeliverFailed" => ChargedNotDelivered,
        // InternalError, bare FailedOperation and anything unknown: the call may have been processed.
        _ => OutcomeUnknown,
    }
}

/// An error answered by the API inside the `Response.Error` envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Tencent error code, e.g. `FailedOperation.BalanceInsufficient`.
    pub code: String,
    /// Tencent's message.
    pub message: String,
    /// RequestId of the failed call.
    pub request_id: String,
}

impl ApiError {
    /// The class of this error's code.
    pub fn class(&self) -> ErrorClass {
        classify(&self.code)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (RequestId {})",
            self.code, self.message, self.request_id
        )?;
        if self.code == "AuthFailure.SignatureExpire" {
            f.write_str("; the clock of this host differs from Tencent's by more than 5 minutes")?;
        }
        Ok(())
    }
}

/// Everything a call to the Tencent API can end in, other than success.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The API answered with an error envelope.
    #[error("{0}")]
    Api(ApiError),
    /// The request never left this host (DNS failure, connection refused, TLS handshake): safe to retry.
    #[error("request not sent: {0}")]
    NotSent(String),
    /// The request may have been processed (timeout after sending, reset, 5xx, unreadable body).
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// A read answered with fewer records than it said matched; read again rather than guess.
    #[error("incomplete answer: {0}")]
    Incomplete(String),
}

impl CallError {
    /// Low-cardinality label for metrics and logs: how the call failed, not what it means.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Api(_) => "api",
            Self::NotSent(_) => "not_sent",
            Self::OutcomeUnknown(_) => "outcome_unknown",
            Self::Incomplete(_) => "incomplete",
        }
    }

    /// What this error means for the payment.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api(e) => e.class(),
            Self::NotSent(_) | Self::Incomplete(_) => ErrorClass::Transient,
            Self::OutcomeUnknown(_) => ErrorClass::OutcomeUnknown,
        }
    }

    /// The Tencent code, or a synthetic one for transport failures.
    pub fn code(&self) -> &str {
        match self {
            Self::Api(e) => &e.code,
            Self::NotSent(_) => "Transport.NotSent",
            Self::OutcomeUnknown(_) => "Transport.OutcomeUnknown",
            Self::Incomplete(_) => "Lookup.Incomplete",
        }
    }

    /// The RequestId, when the API answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(e) => Some(&e.request_id),
            _ => None,
        }
    }

    /// The message without code or RequestId.
    pub fn message(&self) -> String {
        match self {
            Self::Api(e) => e.message.clone(),
            Self::NotSent(m) | Self::OutcomeUnknown(m) | Self::Incomplete(m) => m.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorClass::*;
    use super::*;

    #[test]
    fn every_documented_code_has_its_class() {
        let table: &[(&str, ErrorClass)] = &[
            ("InvalidParameter", Terminal),
            ("InvalidParameterValue", Terminal),
            ("MissingParameter", Terminal),
            ("UnknownParameter", Terminal),
            ("FailedOperation.InvalidVoucher", Terminal),
            ("FailedOperation.NeedPayTogether", Terminal),
            ("FailedOperation.NeedPayTogeter", Terminal),
            ("FailedOperation.AgentPayDealCannotDown", Terminal),
            ("FailedOperation.InvalidDeal", Terminal),
            ("InvalidAction", Terminal),
            ("NoSuchVersion", Terminal),
            ("UnsupportedOperation", Terminal),
            ("InvalidParameterValue.OrderIds", Terminal),
            ("FailedOperation.BalanceInsufficient", NeedsHuman),
            ("FailedOperation.PayPriceError", NeedsHuman),
            ("UnauthorizedOperation.CamNoAuth", NeedsHuman),
            ("UnauthorizedOperation.CertificationNeedUpgrade", NeedsHuman),
            ("UnauthorizedOperation.NotCertification", NeedsHuman),
            ("UnauthorizedOperation.NotFinanceAuth", NeedsHuman),
            ("UnauthorizedOperation", NeedsHuman),
            ("AuthFailure.SecretIdNotFound", NeedsHuman),
            ("AuthFailure.SignatureFailure", NeedsHuman),
            ("AuthFailure.InvalidSecretId", NeedsHuman),
            ("AuthFailure.TokenFailure", NeedsHuman),
            ("AuthFailure.MFAFailure", NeedsHuman),
            ("AuthFailure.InvalidAuthorization", NeedsHuman),
            ("AuthFailure.UnauthorizedOperation", NeedsHuman),
            ("LimitExceeded", NeedsHuman),
            ("RequestLimitExceeded", Transient),
            ("RequestLimitExceeded.UinLimitExceeded", Transient),
            (
                "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
                Transient,
            ),
            ("AuthFailure.SignatureExpire", Transient),
            ("FailedOperation.PaySuccDeliverFailed", ChargedNotDelivered),
            ("InternalError", OutcomeUnknown),
            ("FailedOperation", OutcomeUnknown),
            ("FailedOperation.SomethingNew", OutcomeUnknown),
            ("ResourceUnavailable", OutcomeUnknown),
            ("", OutcomeUnknown),
        ];
        for (code, class) in table {
            assert_eq!(classify(code), *class, "{code}");
        }
    }

    #[test]
    fn transport_errors_have_classes() {
        assert_eq!(CallError::NotSent("refused".into()).class(), Transient);
        assert_eq!(
            CallError::OutcomeUnknown("timeout".into()).class(),
            OutcomeUnknown
        );
    }

    #[test]
    fn signature_expire_explains_clock_skew() {
        let e = ApiError {
            code: "AuthFailure.SignatureExpire".into(),
            message: "expired".into(),
            request_id: "r1".into(),
        };
        assert!(e.to_string().contains("clock"));
    }
}
