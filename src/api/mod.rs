//! The DealPayment API (placeholder).

/// The CRD as YAML.
pub fn crd_yaml() -> String {
    String::new()
}
