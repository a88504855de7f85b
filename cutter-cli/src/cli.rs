//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_CODES_HELP;

/// The version line: the crate's version and the git commit the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CUTTER_GIT_COMMIT"),
    ")"
);

/// Cut an authoritative source document into information units and write them to a
/// PostgreSQL knowledge base through a governed run.
#[derive(Debug, Parser)]
#[command(name = "cutter", version = VERSION, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The config file [default: $CUTTER_CONFIG, else ./cutter.toml].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Who acts, recorded with every run, arming, lock and lifecycle change and in the reports
    /// [default: the config's [operator] name, else USER@HOST].
    #[arg(long, global = true, value_name = "NAME")]
    pub actor: Option<String>,
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
        /// Fill in `[database] url` (the installing user's URL, never with a password).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Fill in `[backup] recipient` (the fingerprint of the backup key).
        #[arg(long, value_name = "FINGERPRINT")]
        backup_recipient: Option<String>,
    },
    /// Parse a document and print its cut plan (no database, no run).
    Plan(PlanArgs),
    /// Run, resume, cancel, revert and inspect governed runs.
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Orchestrate(Orchestrate),
    /// Approval requests for the gates.
    #[command(subcommand)]
    Approve(Approve),
    /// Arm writes for one run for a limited time (the kill-switch is off unless armed). The
    /// next command that moves the run disarms it when it ends; `resume --arm` does both in
    /// one step.
    Arm {
        run_id: String,
        /// How long the arming lasts, e.g. 10m [default: the config's killswitch.default_ttl].
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Turn writes off for a run.
    Disarm { run_id: String },
    /// Check every precondition of a live run of FILE, one row each (PASS/FAIL and what to do);
    /// exit 0 only when all pass.
    Preflight {
        file: PathBuf,
        #[arg(long)]
        document_id: String,
        #[arg(long, value_enum, default_value = "live")]
        mode: ModeArg,
        #[command(flatten)]
        profile: ProfileArgs,
        #[arg(long)]
        json: bool,
    },
    /// Intake: the live source registry of documents and their pinned sha256.
    #[command(subcommand)]
    Source(Source),
    /// The knowledge base: migrations, roles and grants.
    #[command(subcommand)]
    Db(Db),
    /// The live grant matrix of the cutter roles.
    #[command(subcommand)]
    Grants(Grants),
    /// The encrypted pre-write backup.
    #[command(subcommand)]
    Backup(Backup),
    /// Clear a stale lock on a document in the knowledge base (its run stopped or its process
    /// died); the clearing is logged in the database with the reason.
    Unlock {
        document_id: String,
        /// The run that holds the lock, as the lock error names it.
        #[arg(long, value_name = "RUN_ID")]
        run: String,
        /// Why, for the lock log.
        #[arg(long)]
        reason: String,
        /// Clear it even though the holding run is paused at a gate or running here.
        #[arg(long)]
        force: bool,
    },
    /// Make an Ed25519 key pair for signing approvals: PREFIX.key (mode 0600) and PREFIX.pub.
    Keygen {
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum Source {
    /// Register a document with the sha256 of FILE as its pin (a different pin for a
    /// registered document is refused, never replaced).
    Register {
        file: PathBuf,
        #[arg(long)]
        document_id: String,
        #[arg(long)]
        title: String,
        /// A protected document: its SG_1 approval must carry the protected allowance.
        #[arg(long)]
        protected: bool,
    },
    /// List the registered documents.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Say whether FILE still matches the document's pin.
    Check { document_id: String, file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum Db {
    /// Apply the migrations and create the roles and grants (idempotent). Connects as the
    /// user in the database url, who must be able to create roles. Each role's password is
    /// set from the environment variable [database] names for it.
    Init {
        /// Create the login roles without passwords where no variable is named (only for a
        /// server that does not authenticate by password; preflight reports it).
        #[arg(long)]
        no_password: bool,
    },
    /// Show the applied migration version.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum Grants {
    /// Print the live grant matrix, its sha256, and how it differs from the design and from
    /// the sha the config expects.
    Show {
        #[arg(long)]
        json: bool,
        /// Print only the sha256 (for `cutter grants expect "$(cutter grants show --sha)"`
        /// once a person has read the full matrix).
        #[arg(long, conflicts_with = "json")]
        sha: bool,
    },
    /// Record the grant-matrix sha in the config, after a person has read `grants show`.
    /// The sha must be the one the live matrix has now.
    Expect {
        /// The sha256 `cutter grants show` printed.
        sha256: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Backup {
    /// Check pg_dump, gpg, the recipient key and a tiny round trip; prints SELFTEST: PASS or
    /// what is wrong.
    Selftest,
    /// Re-hash a run's backup against its envelope.
    Verify { run_id: String },
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
        /// The run id (the idempotency key of its writes) [default: a fresh one from the
        /// document id and the time].
        #[arg(long)]
        run_id: Option<String>,
        /// Dry-run only: approve both gates with clearly labelled self-approvals and run to
        /// closeout in one command (a rehearsal; refused in live mode).
        #[arg(long)]
        self_approve: bool,
        #[arg(long)]
        json: bool,
    },
    /// Continue a run: through its gate with an approval, or after an interruption without.
    /// A live run writes only while armed; the command disarms it before it exits.
    Resume {
        run_id: String,
        #[arg(long, value_name = "FILE")]
        approval: Option<PathBuf>,
        /// Arm the run for this command first, e.g. --arm 10m (live runs).
        #[arg(long, value_name = "DURATION")]
        arm: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run paused at a gate; drafts already written are retired. Units already
    /// enacted are retired only under a signed compensation approval (--approval).
    Void {
        run_id: String,
        /// The signed compensation approval (SG_C), needed when enacted units are retired.
        #[arg(long, value_name = "FILE")]
        approval: Option<PathBuf>,
        /// Why, recorded on every retired unit (an SG_C approval's signed reason wins).
        #[arg(long)]
        reason: Option<String>,
        /// Arm the run for this command first, e.g. --arm 10m (live runs).
        #[arg(long, value_name = "DURATION")]
        arm: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Compensate a closed-out or stopped run (soft: units are retired, nothing deleted).
    /// Retiring enacted units needs a signed compensation approval (SG_C, `cutter approve
    /// request RUN_ID --compensation --reason TEXT`).
    Revert {
        run_id: String,
        /// The signed compensation approval (SG_C).
        #[arg(long, value_name = "FILE")]
        approval: Option<PathBuf>,
        /// Why, recorded on every retired unit (an SG_C approval's signed reason wins).
        #[arg(long)]
        reason: Option<String>,
        /// Arm the run for this command first, e.g. --arm 10m (live runs).
        #[arg(long, value_name = "DURATION")]
        arm: Option<String>,
        /// Delete the run's draft units instead of retiring them.
        #[arg(long)]
        hard_delete_drafts: bool,
        /// Print the compensation plan and stop; nothing is applied.
        #[arg(long)]
        plan_only: bool,
        #[arg(long)]
        json: bool,
    },
    /// Cut every document of a batch manifest, N workers at a time, each run to its first
    /// gate (live). The batch lives in the database: start the same command in other processes
    /// or on other machines and their workers share it.
    Batch {
        /// The manifest (`format = "cutter.batch.v1"`, one [[documents]] table per document).
        manifest: PathBuf,
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// [default: the manifest's file stem and the first 12 hex digits of its sha256]
        #[arg(long)]
        batch_id: Option<String>,
        /// How long a worker holds a document before another may take it over (renewed
        /// while it works).
        #[arg(long, default_value = "10m")]
        lease: String,
        /// Intake from the manifest: register each document with the manifest's sha256 before
        /// cutting it (without this, every document must be registered already).
        #[arg(long)]
        register: bool,
        #[arg(long)]
        json: bool,
    },
    /// Resume every run a signed batch approval lists, through its gate.
    BatchResume {
        batch_id: String,
        #[arg(long, value_name = "FILE")]
        approval: PathBuf,
        /// Arm each listed run for this long first (otherwise arm them one by one).
        #[arg(long, value_name = "DURATION")]
        arm: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show every document of a batch, its status and its run.
    BatchStatus {
        batch_id: String,
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
    /// Write the approval request for the gate the run waits at, or (--compensation) for
    /// retiring its enacted units.
    Request {
        run_id: String,
        /// Where to write it [default: stdout].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Request a compensation approval (SG_C) to void or revert enacted units.
        #[arg(long, requires = "reason")]
        compensation: bool,
        /// SG_C: why the units are compensated (the approver signs it).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Turn an approval request into an approval signed with your key (signed now, UTC).
    Sign {
        /// The approval request (from `cutter approve request`).
        request: PathBuf,
        /// Your private key (from `cutter keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Your name, as the config's [trusted_keys] lists it.
        #[arg(long)]
        approver: String,
        /// SG_2: the review decision id [default: the request's, else a fresh one].
        #[arg(long, value_name = "ID")]
        review_decision_id: Option<String>,
        /// SG_1 of a protected document: the document id, allowing it to be cut.
        #[arg(long, value_name = "DOCUMENT_ID")]
        protected_allowance: Option<String>,
        /// Where to write it [default: stdout].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write one approval request for every run of a batch paused at the same gate.
    BatchRequest {
        batch_id: String,
        /// Where to write it [default: stdout].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Explain what the signature check would accept or reject in an approval, and why.
    Verify { file: PathBuf },
    /// Trust a public key for an approver. With a database configured it goes into the
    /// knowledge base's own table of trusted keys (admin role) — the only keys a live run
    /// accepts — and the config's [trusted_keys] keeps a copy for dry-runs.
    Trust {
        /// The public key file (PREFIX.pub from `cutter keygen`).
        pubfile: PathBuf,
        #[arg(long)]
        name: String,
        /// The key stops being trusted at this UTC time (e.g. 2027-06-30T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        valid_until: Option<String>,
    },
    /// Revoke a trusted key in the knowledge base: approvals signed with it are refused from
    /// now on (also removed from the config's [trusted_keys]).
    Revoke {
        /// The public key file.
        pubfile: PathBuf,
    },
    /// List the keys the knowledge base trusts (and has revoked).
    Keys {
        #[arg(long)]
        json: bool,
    },
}
