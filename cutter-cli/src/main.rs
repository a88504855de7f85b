//! The `cutter` binary: parse the command line, run it, map the outcome to an exit code.

mod admin;
mod app;
mod batch;
mod cli;
mod config_path;
mod docs;
mod exit;
mod help;
mod interrupt;
mod output;
mod preflight;
mod progress;
mod read;
mod review;
mod source;

use std::io::{IsTerminal, Write};

use anyhow::anyhow;

use crate::cli::{Approve, Cli, Command, DiffForm, Invocation, Tool};
use crate::exit::CliError;

fn main() -> std::process::ExitCode {
    quiet_on_closed_stdout();
    let outcome = match cli::parse() {
        Invocation::Tool(tool) => run_tool(tool),
        Invocation::App(mut args) => {
            progress::set_quiet(args.quiet);
            init_logging(args.verbose, args.quiet);
            choose_config(&mut args).and_then(|()| app::run(args))
        }
    };
    match outcome {
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

/// `completions` and `man`: generated from the command-line definition, no config read.
fn run_tool(tool: Tool) -> Result<(), CliError> {
    match tool {
        Tool::Completions { shell } => print_bytes(&docs::completions(shell)),
        Tool::Man { dir: None } => print_bytes(&docs::man_page().map_err(CliError::internal)?),
        Tool::Man { dir: Some(dir) } => {
            let written = docs::man_pages(&dir).map_err(CliError::internal)?;
            let mut list = String::new();
            for path in written {
                list.push_str(&format!("{}\n", path.display()));
            }
            print_bytes(list.as_bytes())
        }
    }
}

/// Writes generated text to stdout; a reader that closed the pipe early ends the process
/// quietly, as `println!` does here.
fn print_bytes(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        other => other.map_err(|e| CliError::internal(anyhow!("write to stdout: {e}"))),
    }
}

/// The config file of a command that reads one: a `cutter.toml` found in a parent folder is
/// passed on as if given with `--config`; `-v` names the file in use.
fn choose_config(args: &mut Cli) -> Result<(), CliError> {
    let reads_config = match &args.command {
        Command::Init { .. }
        | Command::Plan(_)
        | Command::Keygen { .. }
        | Command::Approve(Approve::Sign { .. }) => false,
        // Only the knowledge-base form of `diff` reads one (two files need none, and unclear
        // arguments are said before a missing config is).
        Command::Diff(d) => matches!(d.form(), Ok(DiffForm::Versions { .. })),
        _ => true,
    };
    if !reads_config {
        return Ok(());
    }
    let Some(found) =
        config_path::resolve(args.config.as_deref()).map_err(|e| CliError::usage(anyhow!(e)))?
    else {
        let here = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| "the working folder".to_string());
        return Err(CliError::usage(anyhow!(
            "read config: no cutter.toml in {here} or any parent folder; create one with \
             `cutter init`, pass --config FILE or set CUTTER_CONFIG"
        )));
    };
    let shown = std::path::absolute(&found.path).unwrap_or_else(|_| found.path.clone());
    tracing::info!("config file: {} ({})", shown.display(), found.origin);
    if found.origin == config_path::Origin::Parent {
        args.config = Some(found.path);
    }
    Ok(())
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

/// Logs go to stderr so stdout stays machine-readable; `RUST_LOG` wins over `-v` and `-q`.
/// Colour only on a terminal, and never with `NO_COLOR` set (no-color.org): a log piped to a
/// file or another program carries no escape codes.
fn init_logging(verbose: u8, quiet: bool) {
    // `-q` keeps warnings: they are not progress, and say something the operator must know.
    let default = match (quiet, verbose) {
        (true, _) | (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .init();
}

/// Whether stderr may carry colour: it is a terminal and `NO_COLOR` is unset or empty.
fn colour_on_stderr() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}
