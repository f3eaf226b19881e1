//! The `dealpay` binary: parse arguments, hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = dealpay_operator::cli::Cli::parse();
    std::process::exit(dealpay_operator::cli::run(cli).await);
}
