//! The Kubernetes shell (placeholder).

/// Flags of `dealpay run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs the controller.
pub async fn run(_args: RunArgs) -> i32 {
    eprintln!("run: not implemented yet");
    2
}
