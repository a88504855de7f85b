//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES_HELP;

/// Cut an authoritative source document into information units and write them to a
/// PostgreSQL knowledge base through a governed run.
#[derive(Debug, Parser)]
#[command(name = "cutter", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The config file [default: $CUTTER_CONFIG, else ./cutter.toml].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented default cutter.toml and the runtime folders.
    Init {
        /// Where to put cutter.toml and the folders.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Parse a document and print its cut plan (no database, no run).
    Plan(PlanArgs),
    /// Run, resume, cancel, revert and inspect governed runs.
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Orchestrate(Orchestrate),
    /// Approval requests for the gates.
    #[command(subcommand)]
    Approve(Approve),
    /// Arm writes for one run for a limited time (the kill-switch is off unless armed).
    Arm {
        run_id: String,
        /// How long the arming lasts, e.g. 30m, 1h [default: the config's default_ttl].
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Turn writes off for a run.
    Disarm { run_id: String },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also list the regions the profile skipped (front matter, tables of contents, page
    /// headers, annotations), by line range, so a person can check nothing was lost.
    #[arg(long)]
    pub coverage: bool,
}

/// Which grammar profile cuts the document; without either flag one is detected.
#[derive(Debug, Clone, Args)]
pub struct ProfileArgs {
    /// A built-in profile: vn-legal, en-legal or markdown.
    #[arg(long, value_name = "NAME", conflicts_with = "profile_file")]
    pub profile: Option<String>,
    /// A profile written in TOML (see docs/profiles.md).
    #[arg(long, value_name = "PATH")]
    pub profile_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    DryRun,
    Live,
}

#[derive(Debug, Subcommand)]
pub enum Orchestrate {
    /// Start a run: phases 1-5, then pause at SG_1 (cut authorization).
    Cut {
        file: PathBuf,
        #[arg(long)]
        document_id: String,
        #[command(flatten)]
        profile: ProfileArgs,
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// Dry-run only: approve both gates with clearly labelled self-approvals and run to
        /// closeout in one command (a rehearsal; refused in live mode).
        #[arg(long)]
        self_approve: bool,
        #[arg(long)]
        json: bool,
    },
    /// Continue a run: through its gate with an approval, or after an interruption without.
    Resume {
        run_id: String,
        #[arg(long, value_name = "FILE")]
        approval: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run paused at a gate; drafts already written are retired.
    Void {
        run_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Compensate a closed-out or stopped run (soft: units are retired, nothing deleted).
    Revert {
        run_id: String,
        /// Delete the run's draft units instead of retiring them.
        #[arg(long)]
        hard_delete_drafts: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one run, or all runs.
    Status {
        run_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Approve {
    /// Write the approval request for the gate the run waits at.
    Request {
        run_id: String,
        /// Where to write it [default: stdout].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}
