//! The `dealpay` binary: parse arguments, build the runtime they ask for, hand over to the library.

use clap::Parser;

fn main() {
    let cli = dealpay_operator::cli::Cli::parse();
    let runtime = match cli.runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dealpay: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    std::process::exit(runtime.block_on(dealpay_operator::cli::run(cli)));
}
