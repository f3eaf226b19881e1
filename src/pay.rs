//! `dealpay pay` (placeholder).

/// Flags of `dealpay pay`.
#[derive(Debug, clap::Args)]
pub struct PayArgs {}

/// Pays manifests once.
pub async fn run(_args: PayArgs) -> i32 {
    2
}
