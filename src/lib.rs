//! dealpay-operator: pays Tencent Cloud orders declared as Kubernetes `DealPayment` resources.

pub mod tencent;
