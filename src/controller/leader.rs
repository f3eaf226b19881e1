//! Leader election with a Lease (kube-lease-manager): a watch channel that is true while we lead.

use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity.
    pub identity: String,
    /// Lease duration in seconds.
    pub duration: u64,
}

/// Starts the election; the receiver is true while this replica holds the Lease.
pub async fn elect(
    client: kube::Client,
    cfg: &LeaseConfig,
) -> Result<
    (watch::Receiver<bool>, tokio::task::JoinHandle<()>),
    kube_lease_manager::LeaseManagerError,
> {
    // Renew a third of the duration early: the margin covers clock skew and a slow apiserver.
    let grace = (cfg.duration / 3).max(2);
    let manager = LeaseManagerBuilder::new(client, &cfg.name)
        .with_namespace(&cfg.namespace)
        .with_identity(&cfg.identity)
        .with_duration(cfg.duration)
        .with_grace(grace)
        .with_field_manager(format!("dealpay-operator-{}", cfg.identity))
        .build()
        .await?;
    let (rx, task) = manager.watch().await;
    let handle = tokio::spawn(async move {
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "leader election stopped"),
            Err(e) => tracing::error!(error = %e, "leader election task failed"),
        }
    });
    Ok((rx, handle))
}

/// Identity for the Lease: the given one, else the pod name or host name, with a random suffix.
pub fn identity(given: Option<&str>) -> String {
    if let Some(i) = given.filter(|i| !i.is_empty()) {
        return i.to_string();
    }
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "dealpay".into());
    format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The pod's namespace from the service-account mount, if running in a pod.
pub fn pod_namespace() -> Option<String> {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
