//! Writing the status with server-side apply, optionally guarded by a resourceVersion precondition.

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::error::Error;
use crate::api::{DealPayment, DealPaymentStatus};

/// Field manager of every status write.
pub const FIELD_MANAGER: &str = "dealpay-operator";

/// Applies `status`; with `expect_rv`, the write fails with [`Error::Conflict`] if the object changed since.
/// Returns the object's new resourceVersion.
pub async fn apply(
    api: &Api<DealPayment>,
    name: &str,
    status: &DealPaymentStatus,
    expect_rv: Option<&str>,
) -> Result<String, Error> {
    let mut metadata = json!({ "name": name });
    if let Some(rv) = expect_rv {
        metadata["resourceVersion"] = json!(rv);
    }
    let body = json!({
        "apiVersion": "billing.dealpay.dev/v1alpha1",
        "kind": "DealPayment",
        "metadata": metadata,
        "status": serde_json::to_value(status)?,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch_status(name, &params, &Patch::Apply(&body)).await {
        Ok(obj) => Ok(obj.resource_version().unwrap_or_default()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Conflict),
        Err(e) => Err(e.into()),
    }
}
