//! A local simulator of the Tencent Billing API (placeholder until the sandbox lands).

use std::net::SocketAddr;

/// Flags of `dealpay sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, env = "DEALPAY_SANDBOX_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

/// Runs the sandbox until interrupted.
pub async fn run(_args: SandboxArgs) -> i32 {
    eprintln!("sandbox: not implemented yet");
    2
}
