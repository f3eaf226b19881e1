//! Writing the status: a whole-status replace guarded by the resourceVersion the decision was made on.
//!
//! Not server-side apply: when a nested optional field (e.g. `pendingLookup.error`) was once set and
//! later omitted, apply on some API servers (seen on 1.20) leaves a `null` that nobody owns; dropping
//! the parent then leaves `{error: null}` without its required fields and every later apply is refused
//! with 422, so the payment can never be recorded again. A replace writes exactly the status decided.

use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::error::Error;
use crate::api::{DealPayment, DealPaymentStatus};

/// Field manager of every status write.
pub const FIELD_MANAGER: &str = "dealpay-operator";

/// Replaces the status if the object is still at `expect_rv` (without one, at the version read just
/// now); a changed object gives [`Error::Conflict`]. Returns the new resourceVersion.
pub async fn apply(
    api: &Api<DealPayment>,
    name: &str,
    status: &DealPaymentStatus,
    expect_rv: Option<&str>,
) -> Result<String, Error> {
    let rv = match expect_rv {
        Some(rv) => rv.to_string(),
        None => api
            .get_status(name)
            .await?
            .resource_version()
            .unwrap_or_default(),
    };
    // The status subresource keeps the stored spec and metadata: only name, version and status count.
    let mut body = DealPayment::new(name, Default::default());
    body.metadata.resource_version = Some(rv);
    body.status = Some(status.clone());
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.replace_status(name, &params, &body).await {
        Ok(obj) => Ok(obj.resource_version().unwrap_or_default()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Conflict),
        Err(e) => Err(e.into()),
    }
}
