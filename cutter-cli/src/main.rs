//! The `cutter` binary: parse the command line, run it, map the outcome to an exit code.

mod app;
mod cli;
mod exit;
mod output;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    init_logging(args.verbose);
    match app::run(args) {
        Ok(()) => exit::Code::Success.into(),
        Err(err) => {
            eprintln!("error: {:#}", err.error);
            err.code.into()
        }
    }
}

/// Logs go to stderr so stdout stays machine-readable; `RUST_LOG` wins over `-v`.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
