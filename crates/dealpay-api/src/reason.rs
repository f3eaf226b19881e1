//! Every condition type and reason the operator writes, in one place: status, Events, metrics and
//! docs/reasons.md all read these names.

use std::fmt;

/// The condition types of `status.conditions` (kstatus: Ready, Reconciling, Stalled; plus ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// Every order is paid and delivered (Tencent status 4).
    Ready,
    /// Work in progress or a retry scheduled; kstatus reads it as InProgress.
    Reconciling,
    /// Cannot progress without a person or a spec change.
    Stalled,
    /// Money has moved, whether or not delivery finished.
    Paid,
    /// The orders still to pay were priced and could be paid now (only with a cap or a dry run).
    Payable,
}

impl ConditionType {
    /// The `type` string in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Reconciling => "Reconciling",
            Self::Stalled => "Stalled",
            Self::Paid => "Paid",
            Self::Payable => "Payable",
        }
    }
}

impl AsRef<str> for ConditionType {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Why a condition is what it is, or why an Event was emitted. Reasons derived from a Tencent
        /// error code that has no name here are `Api` (the code's last segment, e.g. `ResourceNotFound`).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $name,)*
            /// The last segment of a Tencent error code without a variant of its own.
            Api(String),
        }

        impl Reason {
            /// Every named reason (not `Api`), for docs and tests.
            pub const NAMED: &[Reason] = &[$(Reason::$name,)*];

            /// The CamelCase string written to status, Events and metric labels.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$name => stringify!($name),)*
                    Self::Api(s) => s,
                }
            }

            fn named(s: &str) -> Option<Reason> {
                match s {
                    $(stringify!($name) => Some(Self::$name),)*
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    // Ready
    /// Every order is paid and delivered.
    Paid,
    /// Not looked at yet.
    Pending,
    /// PayDeals was called and no answer is in yet.
    Paying,
    /// Charged; waiting for Tencent to deliver (status 2/3).
    Delivering,
    /// Looking the orders' prices up before the first PayDeals (a cap or a dry run is set).
    Pricing,
    /// A transient failure; retrying later.
    Backoff,
    /// `spec.suspend` holds the payment back.
    Suspended,
    /// The spec is invalid.
    InvalidSpec,
    /// A PayDeals call may or may not have charged; looking the orders up.
    OutcomeUnknown,
    /// DescribeDealsByCond does not find the orders.
    OrderNotFound,
    /// Part of a big deal is charged and part is not; never paid again.
    PartlyPaid,
    /// Some sub-orders of a big deal can never be paid.
    PartlyUnpayable,
    /// The orders can never be paid (cancelled, expired, ...).
    OrderUnpayable,
    /// Charged but Tencent failed to deliver.
    DeliveryFailed,
    /// PayDeals refused the deal and no lookup explains it.
    InvalidDeal,
    /// The orders must be paid together with others not in the manifest (in a dry run: unpaid
    /// sub-orders of the same big deal are left out, so PayDeals may refuse).
    NeedPayTogether,
    /// Rate limited by Tencent.
    RateLimited,
    /// Failed with no error recorded.
    Failed,
    /// `spec.dryRun`: priced and checked, nothing paid.
    DryRun,
    /// The price is above a cap.
    OverBudget,
    /// A price lookup found orders that cannot be paid as asked.
    NotPayable,
    // Payable
    /// Priced, and payable within the caps.
    Payable,
    /// Not priced yet.
    NotPriced,
    // Paid
    /// No money has moved.
    NotPaid,
    /// Some of the orders are charged.
    PartiallyPaid,
    // Reconciling / Stalled while False
    /// Nothing left to do.
    Settled,
    /// Not stalled.
    Progressing,
    // Credentials
    /// No Secret named and no default credentials.
    NoCredentials,
    /// This namespace may not use the operator's default credentials.
    CredentialsNotAllowed,
    /// The named Secret does not exist.
    SecretNotFound,
    /// The Secret lacks `secretId`/`secretKey` or holds non-UTF-8 values.
    SecretInvalid,
    /// The operator's RBAC does not allow reading the Secret.
    SecretForbidden,
    /// The Secret could not be read (API error).
    SecretUnreadable,
    // Events only
    /// An attempt was recorded before PayDeals.
    PaymentStarted,
    /// PayDeals answered with a success.
    PaymentSucceeded,
    /// New credentials: the retry curve starts over.
    CredentialsChanged,
    /// An answer came after its attempt record was superseded.
    LateAnswer,
    /// A success that does not list every order.
    UnexpectedResult,
    /// DescribeDealsByCond failed.
    LookupFailed,
    /// A lookup settled an unknown outcome.
    OutcomeResolved,
    /// A lookup did not settle an unknown outcome yet.
    OutcomeStillUnknown,
    /// The orders were priced.
    Priced,
    /// The charged price differs from the priced one.
    PriceChanged,
    /// The orders are priced in more than one currency.
    MixedCurrencies,
    /// A lookup found the orders unpaid after an unknown outcome; paying again.
    RetryingUnpaid,
}

impl Reason {
    /// The reason for a Tencent error code: its last segment, e.g. `FailedOperation.BalanceInsufficient`
    /// gives `BalanceInsufficient`; the API's misspelt `NeedPayTogeter` is read as `NeedPayTogether`.
    pub fn from_code(code: &str) -> Reason {
        let last = code.rsplit('.').next().unwrap_or(code);
        let cleaned: String = last.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        match cleaned.as_str() {
            "" => Reason::Api("UnknownError".into()),
            "NeedPayTogeter" => Reason::NeedPayTogether,
            "RequestLimitExceeded" => Reason::RateLimited,
            c if c.starts_with(|ch: char| ch.is_ascii_digit()) => Reason::Api(format!("E{c}")),
            c => Reason::named(c).unwrap_or(Reason::Api(cleaned)),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets tests and callers compare with the written string.
impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> String {
        r.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_reasons() {
        let cases = [
            ("FailedOperation.BalanceInsufficient", "BalanceInsufficient"),
            ("FailedOperation.NeedPayTogeter", "NeedPayTogether"),
            ("FailedOperation.NeedPayTogether", "NeedPayTogether"),
            ("RequestLimitExceeded.UinLimitExceeded", "UinLimitExceeded"),
            ("RequestLimitExceeded", "RateLimited"),
            ("FailedOperation.InvalidDeal", "InvalidDeal"),
            ("InternalError", "InternalError"),
            ("", "UnknownError"),
            ("Foo.1234", "E1234"),
            ("Foo.Bar-Baz", "BarBaz"),
        ];
        for (code, want) in cases {
            assert_eq!(Reason::from_code(code).as_str(), want, "{code}");
        }
        assert_eq!(
            Reason::from_code("FailedOperation.InvalidDeal"),
            Reason::InvalidDeal
        );
    }

    #[test]
    fn names_are_camel_case_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Reason::NAMED {
            let s = r.as_str();
            assert!(s.starts_with(|c: char| c.is_ascii_uppercase()), "{s}");
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
            assert!(seen.insert(s), "{s} twice");
            assert_eq!(Reason::named(s).as_ref(), Some(r));
        }
        assert!(Reason::named("Api").is_none());
    }
}
