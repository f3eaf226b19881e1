//! Publishing Kubernetes Events without kube's per-recorder cache.
//!
//! kube's [`Recorder`] keeps every Event it published for six minutes, to turn repeats into a series;
//! its key includes the object's resourceVersion, which changes with every status write, so for
//! DealPayments it never finds a repeat, and a burst of payments (three Events each) kept up to 30,000
//! Events in memory and scanned them all on every publish. A fresh recorder per Event publishes the
//! same Event without that cache.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder, Reporter};

/// Publishes Events as the operator.
#[derive(Clone)]
pub struct EventPublisher {
    client: kube::Client,
    reporter: Reporter,
}

impl EventPublisher {
    /// Events reported by `reporter`.
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self { client, reporter }
    }

    /// Creates the Event about `reference`.
    pub async fn publish(
        &self,
        ev: &Event,
        reference: &ObjectReference,
    ) -> Result<(), kube::Error> {
        Recorder::new(self.client.clone(), self.reporter.clone())
            .publish(ev, reference)
            .await
    }
}
