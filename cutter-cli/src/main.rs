//! The `cutter` binary: parse the command line, run it, map the outcome to an exit code.

mod admin;
mod app;
mod batch;
mod cli;
mod exit;
mod interrupt;
mod output;
mod preflight;
mod progress;
mod source;

use clap::Parser;

fn main() -> std::process::ExitCode {
    quiet_on_closed_stdout();
    let args = cli::Cli::parse();
    init_logging(args.verbose);
    match app::run(args) {
        Ok(()) => exit::Code::Success.into(),
        Err(err) => {
            // Messages carry values from documents, files and the database: control
            // characters are shown escaped, never sent to the terminal.
            let text = format!("{:#}", err.error);
            eprintln!(
                "error: {}",
                cutter_core::text::escape_controls_keep_newlines(&text)
            );
            err.code.into()
        }
    }
}

/// `cutter ... | head` closes stdout early; `println!` then panics with EPIPE. Output is
/// printed only after every state change is saved, so ending quietly (with the shell's
/// SIGPIPE status, 141) loses nothing, where a panic message would look like a crash.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
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
