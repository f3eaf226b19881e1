//! The admission rules, written once: the CRD schema is built from them and `dealpay pay` checks them.

/// Largest number of ids in one DealPayment.
pub const MAX_IDS: usize = 100;
/// Pattern of a sub-order or order number.
pub const ID_PATTERN: &str = "^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$";
/// Pattern of a voucher id.
pub const VOUCHER_PATTERN: &str = "^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$";
/// Pattern of a CpsUin.
pub const CPS_UIN_PATTERN: &str = "^[0-9]{1,20}$";
/// Pattern of a region such as `ap-guangzhou`.
pub const REGION_PATTERN: &str = "^[a-z]{2,}(-[a-z0-9]+){1,4}$";
/// Pattern of a Secret name (DNS-1123 subdomain).
pub const SECRET_NAME_PATTERN: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// Pattern of an amount such as `spec.maxTotalCost` (`"1200.00"`).
pub const AMOUNT_PATTERN: &str = crate::money::AMOUNT_PATTERN;
/// Allowed `agentPay` values.
pub const AGENT_PAY_VALUES: [i32; 3] = [0, 3, 4];

/// CEL rules on `spec`: (rule, message). Honoured by Kubernetes 1.25 and newer.
pub const SPEC_CEL_RULES: &[(&str, &str)] = &[
    (
        "has(self.orderIds) != has(self.bigDealIds)",
        "set exactly one of spec.orderIds and spec.bigDealIds",
    ),
    (
        "has(oldSelf.orderIds) == has(self.orderIds) && (!has(self.orderIds) || self.orderIds == oldSelf.orderIds)",
        "spec.orderIds cannot change once set: create a new DealPayment for other orders",
    ),
    (
        "has(oldSelf.bigDealIds) == has(self.bigDealIds) && (!has(self.bigDealIds) || self.bigDealIds == oldSelf.bigDealIds)",
        "spec.bigDealIds cannot change once set: create a new DealPayment for other orders",
    ),
];
