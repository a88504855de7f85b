//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

use crate::help;

/// The version line: the crate's version and the git commit the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CUTTER_GIT_COMMIT"),
    ")"
);

/// The help heading of the options every command takes.
const GLOBAL: &str = "Global options";

/// Cut an authoritative source document into information units and write them to a
/// PostgreSQL knowledge base through a governed run.
#[derive(Debug, Parser)]
#[command(name = "cutter", version = VERSION, after_help = help::top_after_help())]
pub struct Cli {
    /// The config file [default: $CUTTER_CONFIG, else ./cutter.toml, else the nearest
    /// cutter.toml in a parent folder (yours, and not writable by others)].
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Who acts, recorded with every run, arming, lock and lifecycle change and in the reports
    /// [default: the config's [operator] name, else USER@HOST].
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL)]
    pub actor: Option<String>,
    /// More log output on stderr (-v info and the config file in use, -vv debug); RUST_LOG
    /// overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
    /// No progress lines and no informational logs on stderr; errors and warnings still print.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,
    /// Print the command's result as one JSON document on stdout (logs and progress stay on
    /// stderr); every command that prints a result has it.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented default cutter.toml and the runtime folders.
    #[command(after_help = help::INIT)]
    Init {
        /// Where to put cutter.toml and the folders.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// Fill in `[database] url` (the installing user's URL, never with a password).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Fill in `[backup] recipient` (the fingerprint of the backup key).
        #[arg(long, value_name = "FINGERPRINT")]
        backup_recipient: Option<String>,
    },
    /// Parse a document and print its cut plan (no database, no run).
    #[command(after_help = help::PLAN)]
    Plan(PlanArgs),
    /// Print a document's text as it is (or was) in force in the knowledge base.
    ///
    /// Now, at a moment (--as-of) or as a document version left it (--version): every unit in
    /// order, or one unit and the units under it, each with its key, title, version and
    /// status (repealed ones marked), then its text. Reads as the verify role.
    #[command(after_help = help::SHOW)]
    Show(ShowArgs),
    /// The review page of the gate a run waits at: where it is, whether it is still the page
    /// the approval request names (its sha256 is signed), and with --out a copy built again.
    #[command(after_help = help::REVIEW)]
    Review {
        /// The run waiting at SG_1 or SG_2.
        run_id: String,
        /// Write the page built again now (HTML and Markdown) into this folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Compare two texts of a document unit by unit, with the words that changed.
    ///
    /// Which units were changed, added, moved or removed, with the changed words of each
    /// title and body ([-removed-]{+added+}); unchanged units are counted. Either two enacted
    /// versions of a document in the knowledge base (DOCUMENT_ID --from N --to M) or two
    /// files (OLD_FILE NEW_FILE, no database).
    #[command(
        after_help = help::DIFF,
        override_usage = "cutter diff [OPTIONS] <OLD_FILE> <NEW_FILE>\n       cutter diff [OPTIONS] <DOCUMENT_ID> --from <N> --to <M>"
    )]
    Diff(DiffArgs),
    /// Run, resume, cancel, revert and inspect governed runs.
    #[command(subcommand, after_help = help::orchestrate_after_help())]
    Orchestrate(Orchestrate),
    /// Approval requests for the gates: request, sign, verify, and the trusted keys.
    #[command(subcommand, after_help = help::APPROVE)]
    Approve(Approve),
    /// Arm writes for one run for a limited time (the kill-switch is off unless armed). The
    /// next command that moves the run disarms it when it ends; `resume --arm` does both in
    /// one step.
    #[command(after_help = help::ARM)]
    Arm {
        /// The run to arm, as `orchestrate cut` or `orchestrate status` printed it.
        run_id: String,
        /// How long the arming lasts, e.g. 10m [default: the config's killswitch.default_ttl;
        /// at most its max_ttl].
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// Turn writes off for a run.
    #[command(after_help = help::DISARM)]
    Disarm {
        /// The run to disarm.
        run_id: String,
    },
    /// Check every precondition of a live run of FILE, one row each (PASS/FAIL and what to do);
    /// exit 0 only when all pass.
    #[command(after_help = help::PREFLIGHT)]
    Preflight {
        /// The source document the run would cut.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The document's id in the source registry (as `source register` recorded it).
        #[arg(long, value_name = "ID")]
        document_id: String,
        /// The run to check for: live (database, roles, grants, backup, keys, rehearsal) or
        /// dry-run (the document and the config only).
        #[arg(long, value_enum, default_value = "live")]
        mode: ModeArg,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Intake: the live source registry of documents, their versions and pinned sha256.
    #[command(subcommand, after_help = help::SOURCE)]
    Source(Source),
    /// The knowledge base: migrations, roles and grants.
    #[command(subcommand, after_help = help::DB)]
    Db(Db),
    /// The live grant matrix of the cutter roles.
    #[command(subcommand, after_help = help::GRANTS)]
    Grants(Grants),
    /// The encrypted pre-write backup.
    #[command(subcommand, after_help = help::BACKUP)]
    Backup(Backup),
    /// Clear a stale lock on a document in the knowledge base (its run stopped or its process
    /// died); the clearing is logged in the database with the reason.
    #[command(after_help = help::UNLOCK)]
    Unlock {
        /// The locked document's id.
        document_id: String,
        /// The run that holds the lock, as the lock error names it.
        #[arg(long, value_name = "RUN_ID")]
        run: String,
        /// Why, for the lock log.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Clear it even though the holding run is paused at a gate or running here.
        #[arg(long)]
        force: bool,
    },
    /// Make an Ed25519 key pair for signing approvals: PREFIX.key (mode 0600) and PREFIX.pub.
    #[command(after_help = help::KEYGEN)]
    Keygen {
        /// Where to write the pair: PREFIX.key and PREFIX.pub (neither may exist).
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum Source {
    /// Register FILE as the document's text: version 1 of a new document, or the next version
    /// of a registered one (its pin moves to the new text; earlier versions stay in its
    /// history, and a pin is never overwritten). The same text again changes nothing.
    #[command(after_help = help::SOURCE_REGISTER)]
    Register {
        /// The authoritative source document, exactly as it will be cut.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The document's id, chosen once (letters, digits, `-`, `_`, `.`), e.g. CHARTER-1.
        #[arg(long, value_name = "ID")]
        document_id: String,
        /// The document's title, as people know it: needed the first time; a later version
        /// keeps the registered title.
        #[arg(long, value_name = "TEXT")]
        title: Option<String>,
        /// The date this text takes effect (recorded with the version).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_effective)]
        effective: Option<chrono::NaiveDate>,
        /// A protected document: its SG_1 approval must carry the protected allowance (once
        /// protected, always protected).
        #[arg(long)]
        protected: bool,
    },
    /// List the registered documents: each one's latest version, its sha256, protection and
    /// how many versions are registered.
    #[command(after_help = help::SOURCE_LIST)]
    List,
    /// List the versions of a document: number, sha256, when and by whom each was registered,
    /// and the date it takes effect.
    #[command(after_help = help::SOURCE_HISTORY)]
    History {
        /// The registered document's id.
        #[arg(value_name = "ID")]
        document_id: String,
    },
    /// Say whether FILE is the text a live run would cut: the document's latest version.
    #[command(after_help = help::SOURCE_CHECK)]
    Check {
        /// The registered document's id.
        document_id: String,
        /// The file to compare with the pinned sha256.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `--effective`: a calendar date, said the one way.
fn parse_effective(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("expected a date as YYYY-MM-DD, e.g. 2026-07-01 ({e})"))
}

#[derive(Debug, Subcommand)]
pub enum Db {
    /// Apply the migrations and create the roles and grants (idempotent). Connects as the
    /// user in the database url, who must be able to create roles. Each role's password is
    /// set from the environment variable [database] names for it.
    #[command(after_help = help::DB_INIT)]
    Init {
        /// Create the login roles without passwords where no variable is named (only for a
        /// server that does not authenticate by password; preflight reports it).
        #[arg(long)]
        no_password: bool,
    },
    /// Show the applied migration version.
    #[command(after_help = help::DB_STATUS)]
    Status,
}

#[derive(Debug, Subcommand)]
pub enum Grants {
    /// Print the live grant matrix, its sha256, and how it differs from the design and from
    /// the sha the config expects.
    #[command(after_help = help::GRANTS_SHOW)]
    Show {
        /// Print only the sha256 (for `cutter grants expect "$(cutter grants show --sha)"`
        /// once a person has read the full matrix).
        #[arg(long, conflicts_with = "json")]
        sha: bool,
    },
    /// Record the grant-matrix sha in the config, after a person has read `grants show`.
    /// The sha must be the one the live matrix has now.
    #[command(after_help = help::GRANTS_EXPECT)]
    Expect {
        /// The sha256 `cutter grants show` printed.
        sha256: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Backup {
    /// Check pg_dump, gpg, the recipient key and a tiny round trip; prints SELFTEST: PASS or
    /// what is wrong.
    #[command(after_help = help::BACKUP_SELFTEST)]
    Selftest,
    /// Re-hash a run's backup (or a full backup) against its envelope, check whom it is
    /// encrypted to and, with the secret key here, decrypt it to a pipe and read it back.
    #[command(after_help = help::BACKUP_VERIFY)]
    Verify {
        /// The run whose backup to check (or the name `backup full` printed).
        run_id: String,
    },
    /// Restore a run's pre-write backup (its document as it was before the run) into an
    /// empty database, for inspection; prints the rows loaded per table.
    #[command(after_help = help::BACKUP_RESTORE)]
    Restore {
        /// The run whose backup to restore.
        run_id: String,
        /// The empty database to load it into (`postgres://user@host:port/db`); its tables
        /// are created from the backup, without keys, constraints or triggers.
        #[arg(long, value_name = "URL")]
        into: String,
        /// The NAME of the environment variable holding the target's password.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
    /// Back up every table of the knowledge base (pg_dump, encrypted to the backup key), for
    /// operators' scheduled backups; prints its name for `backup verify`.
    #[command(after_help = help::BACKUP_FULL)]
    Full,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The source document to cut (UTF-8 text or Markdown).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Also list the regions the profile skipped (front matter, tables of contents, page
    /// headers, annotations), by line range, so a person can check nothing was lost.
    #[arg(long)]
    pub coverage: bool,
    /// Print the review page instead of the plan: `html` (one self-contained page) or `md`
    /// (its Markdown twin): every unit with its text, the lines no unit holds and the
    /// linter's warnings, as an approver would see them (reviewed as a first version).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<ReviewFormat>,
    /// Write the review page to FILE instead of stdout (needs --format).
    #[arg(long, value_name = "FILE", requires = "format")]
    pub out: Option<PathBuf>,
    /// Make the parser's warnings errors (a repeated heading, a line that looks like a
    /// heading but was not taken …): the plan is refused with exit 3 and every warning listed.
    #[arg(long)]
    pub strict: bool,
    /// Write every problem of a plan that fails, or every warning of one that does not, to
    /// FILE, one per line (the message lists the first 50).
    #[arg(long, value_name = "FILE")]
    pub problems_out: Option<PathBuf>,
}

/// The form of a review page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewFormat {
    /// One self-contained HTML page (inline CSS and script, no network).
    Html,
    /// Markdown, for terminals and diffs.
    Md,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The document's id (as `source register` recorded it).
    #[arg(value_name = "DOCUMENT_ID")]
    pub document_id: String,
    /// Only this unit and the units under it, e.g. ch-2/art-14 [default: the whole document].
    #[arg(value_name = "UNIT_KEY")]
    pub unit_key: Option<String>,
    /// The text in force at this moment: a date (YYYY-MM-DD, the start of that day, UTC) or a
    /// time (RFC 3339, e.g. 2026-07-01T12:00:00Z) [default: now].
    #[arg(long, value_name = "DATE|DATETIME", value_parser = parse_as_of, group = "when")]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// The text as document version N left it (every unit at its latest version enacted with
    /// version N or an earlier one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), group = "when")]
    pub version: Option<u32>,
}

impl ShowArgs {
    /// Which text is asked for.
    pub fn when(&self) -> cutter_core::in_force::When {
        use cutter_core::in_force::When;
        match (self.as_of, self.version) {
            (Some(t), _) => When::AsOf(t),
            (None, Some(n)) => When::Version(n),
            (None, None) => When::Now,
        }
    }
}

/// `--as-of`: a date (the start of that day, UTC) or an RFC 3339 time.
fn parse_as_of(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(start) = date.and_hms_opt(0, 0, 0) {
            return Ok(start.and_utc());
        }
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            "expected a date as YYYY-MM-DD (the start of that day, UTC), e.g. 2026-07-01, or a time as RFC 3339 (YYYY-MM-DDTHH:MM:SSZ or with an offset), e.g. 2026-07-01T12:00:00Z".to_string()
        })
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old file (with NEW_FILE), or the document's id in the knowledge base (with --from
    /// and --to).
    #[arg(value_name = "OLD_FILE|DOCUMENT_ID")]
    pub first: String,
    /// The new file: compare two files, cut with the same profile (no database).
    #[arg(value_name = "NEW_FILE")]
    pub new_file: Option<PathBuf>,
    /// The document version to compare from (needs --to and a DOCUMENT_ID).
    #[arg(
        long,
        value_name = "N",
        requires = "to",
        value_parser = clap::value_parser!(u32).range(1..),
        conflicts_with_all = ["new_file", "profile", "profile_file"]
    )]
    pub from: Option<u32>,
    /// The document version to compare to (needs --from).
    #[arg(
        long,
        value_name = "M",
        requires = "from",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub to: Option<u32>,
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// What `cutter diff` compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffForm {
    /// Two files (no database).
    Files { old: PathBuf, new: PathBuf },
    /// Two enacted versions of a document in the knowledge base.
    Versions {
        document_id: String,
        from: u32,
        to: u32,
    },
}

impl DiffArgs {
    /// Which of the two forms the arguments are, or what is missing.
    pub fn form(&self) -> Result<DiffForm, String> {
        match (&self.new_file, self.from, self.to) {
            (Some(new), None, None) => Ok(DiffForm::Files {
                old: PathBuf::from(&self.first),
                new: new.clone(),
            }),
            (None, Some(from), Some(to)) => Ok(DiffForm::Versions {
                document_id: self.first.clone(),
                from,
                to,
            }),
            _ => Err(format!(
                "compare what? `{}` alone is not enough: give two files (`cutter diff OLD_FILE NEW_FILE`) or a document and two of its versions (`cutter diff DOCUMENT_ID --from N --to M`)",
                self.first
            )),
        }
    }
}

/// Which grammar profile cuts the document; without either flag one is detected.
#[derive(Debug, Clone, Args)]
pub struct ProfileArgs {
    /// A built-in profile: vn-legal, eu-oj, en-legal or markdown.
    #[arg(long, value_name = "NAME", conflicts_with = "profile_file")]
    pub profile: Option<String>,
    /// A profile written in TOML (see docs/profiles.md).
    #[arg(long, value_name = "PATH")]
    pub profile_file: Option<PathBuf>,
}

impl ProfileArgs {
    /// The discoverer the flags ask for: a built-in, a TOML profile, or detection.
    pub fn discoverer(&self) -> crate::exit::Result<cutter_core::parser::ProfileDiscoverer> {
        Ok(cutter_adapters::wiring::discoverer(
            self.profile.as_deref(),
            self.profile_file.as_deref(),
        )?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// The in-memory simulator: no database is written.
    DryRun,
    /// The PostgreSQL knowledge base, under the kill-switch and signed approvals.
    Live,
}

#[derive(Debug, Subcommand)]
pub enum Orchestrate {
    /// Start a run: phases 1-5, then pause at SG_1 (cut authorization).
    #[command(after_help = help::CUT)]
    Cut {
        /// The source document to cut; a live run needs it registered (`source register`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The document's id (the source registry's, for a live run).
        #[arg(long, value_name = "ID")]
        document_id: String,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Where the run writes: dry-run (the simulator) or live (the knowledge base).
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// The run id (the idempotency key of its writes) [default: a fresh one from the
        /// document id and the time].
        #[arg(long, value_name = "RUN_ID")]
        run_id: Option<String>,
        /// Dry-run only: approve both gates with clearly labelled self-approvals and run to
        /// closeout in one command (a rehearsal; refused in live mode).
        #[arg(long)]
        self_approve: bool,
        /// Stop the run at cutplan (STOP_PARSER_WARNINGS, exit 3) if the parser warns: a line
        /// that looks like a heading read as text, or a repeated heading (`cutter plan FILE`
        /// lists them). Nothing is written.
        #[arg(long)]
        strict: bool,
    },
    /// Continue a run: through its gate with an approval, or after an interruption without.
    /// A live run writes only while armed; the command disarms it before it exits.
    #[command(after_help = help::RESUME)]
    Resume {
        /// The run to continue.
        run_id: String,
        /// The signed approval for the gate the run waits at (`cutter approve sign`).
        #[arg(long, value_name = "FILE")]
        approval: Option<PathBuf>,
        /// Arm the run for this command first, e.g. --arm 10m (live runs).
        #[arg(long, value_name = "DURATION")]
        arm: Option<String>,
    },
    /// Cancel a run paused at a gate; drafts already written are retired. Units already
    /// enacted are retired only under a signed compensation approval (--approval).
    #[command(after_help = help::VOID)]
    Void {
        /// The paused run to cancel.
        run_id: String,
        /// The signed compensation approval (SG_C), needed when enacted units are retired.
        #[arg(long, value_name = "FILE")]
        approval: Option<PathBuf>,
        /// Why, recorded on every retired unit (an SG_C approval's signed reason wins).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Arm the run for this command first, e.g. --arm 10m (live runs).
        #[arg(long, value_name = "DURATION")]
        arm: Option<String>,
    },
    /// Compensate a closed-out or stopped run (soft: units are retired, nothing deleted).
    /// Retiring enacted units needs a signed compensation approval (SG_C, `cutter approve
    /// request RUN_ID --compensation --reason TEXT`).
    #[command(after_help = help::REVERT)]
    Revert {
        /// The closed-out or stopped run to compensate.
        run_id: String,
        /// The signed compensation approval (SG_C).
        #[arg(long, value_name = "FILE")]
        approval: Option<PathBuf>,
        /// Why, recorded on every retired unit (an SG_C approval's signed reason wins).
        #[arg(long, value_name = "TEXT")]
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
    },
    /// Cut every document of a batch manifest, N workers at a time, each run to its first
    /// gate (live). The batch lives in the database: start the same command in other processes
    /// or on other machines and their workers share it.
    #[command(after_help = help::BATCH)]
    Batch {
        /// The manifest (`format = "cutter.batch.v1"`, one [[documents]] table per document).
        #[arg(value_name = "MANIFEST")]
        manifest: PathBuf,
        /// How many documents this process cuts at the same time.
        #[arg(long, default_value_t = 1, value_name = "N")]
        workers: usize,
        /// The batch's id, the same in every process that shares it [default: the manifest's
        /// file stem and the first 12 hex digits of its sha256].
        #[arg(long, value_name = "BATCH_ID")]
        batch_id: Option<String>,
        /// How long a worker holds a document before another may take it over (renewed
        /// while it works).
        #[arg(long, default_value = "10m", value_name = "DURATION")]
        lease: String,
        /// Intake from the manifest: register each document with the manifest's sha256 before
        /// cutting it (without this, every document must be registered already).
        #[arg(long)]
        register: bool,
    },
    /// Resume every run a signed batch approval lists, through its gate.
    #[command(after_help = help::BATCH_RESUME)]
    BatchResume {
        /// The batch, as `orchestrate batch` printed it.
        batch_id: String,
        /// The signed batch approval (`cutter approve batch-request`, then `approve sign`).
        #[arg(long, value_name = "FILE")]
        approval: PathBuf,
        /// Arm each listed run for this long first (otherwise arm them one by one).
        #[arg(long, value_name = "DURATION")]
        arm: Option<String>,
    },
    /// Show every document of a batch, its status and its run.
    #[command(after_help = help::BATCH_STATUS)]
    BatchStatus {
        /// The batch, as `orchestrate batch` printed it.
        batch_id: String,
    },
    /// Show one run, or all runs.
    #[command(after_help = help::STATUS)]
    Status {
        /// The run to show in full [default: every run, one line each].
        run_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Approve {
    /// Write the approval request for the gate the run waits at, or (--compensation) for
    /// retiring its enacted units.
    #[command(after_help = help::APPROVE_REQUEST)]
    Request {
        /// The run waiting at a gate (or to compensate, with --compensation).
        run_id: String,
        /// Where to write it [default: stdout].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Request a compensation approval (SG_C) to void or revert enacted units.
        #[arg(long, requires = "reason")]
        compensation: bool,
        /// SG_C: why the units are compensated (the approver signs it).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Turn an approval request into an approval signed with your key (signed now, UTC).
    #[command(after_help = help::APPROVE_SIGN)]
    Sign {
        /// The approval request (from `cutter approve request`).
        #[arg(value_name = "REQUEST")]
        request: PathBuf,
        /// Your private key (from `cutter keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Your name, as the config's [trusted_keys] lists it.
        #[arg(long, value_name = "NAME")]
        approver: String,
        /// SG_2: the review decision id [default: the request's, else a fresh one].
        #[arg(long, value_name = "ID")]
        review_decision_id: Option<String>,
        /// SG_1 of a protected document: the document id, allowing it to be cut.
        #[arg(long, value_name = "DOCUMENT_ID")]
        protected_allowance: Option<String>,
        /// The review page you read: its sha256 must be the one the request names (which the
        /// approval signs) [default: review-SG_N.html next to the request, if there is one].
        #[arg(long, value_name = "PAGE")]
        review: Option<PathBuf>,
        /// Where to write it [default: stdout].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write one approval request for every run of a batch paused at the same gate.
    #[command(after_help = help::APPROVE_BATCH_REQUEST)]
    BatchRequest {
        /// The batch whose paused runs the request lists.
        batch_id: String,
        /// Where to write it [default: stdout].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Explain what the signature check would accept or reject in an approval, and why.
    #[command(after_help = help::APPROVE_VERIFY)]
    Verify {
        /// The signed approval to check.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Trust a public key for an approver. With a database configured it goes into the
    /// knowledge base's own table of trusted keys (admin role) — the only keys a live run
    /// accepts — and the config's [trusted_keys] keeps a copy for dry-runs.
    #[command(after_help = help::APPROVE_TRUST)]
    Trust {
        /// The public key file (PREFIX.pub from `cutter keygen`).
        #[arg(value_name = "PUBFILE")]
        pubfile: PathBuf,
        /// The approver's name, as they will give it to `approve sign --approver`.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The key stops being trusted at this UTC time (e.g. 2027-06-30T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        valid_until: Option<String>,
    },
    /// Revoke a trusted key in the knowledge base: approvals signed with it are refused from
    /// now on (also removed from the config's [trusted_keys]).
    #[command(after_help = help::APPROVE_REVOKE)]
    Revoke {
        /// The public key file (PREFIX.pub from `cutter keygen`).
        #[arg(value_name = "PUBFILE")]
        pubfile: PathBuf,
    },
    /// List the keys the knowledge base trusts (and has revoked).
    #[command(after_help = help::APPROVE_KEYS)]
    Keys,
}

// Commands about cutter itself, generated from this definition; handled before any config is
// read. (A plain comment: a doc comment here would become the about text of `cutter`.)
#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Print a shell completion script for cutter on stdout.
    #[command(after_help = help::COMPLETIONS)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: Shell,
    },
    /// Print cutter's man page (roff) on stdout, or write one page per command into DIR.
    #[command(after_help = help::MAN)]
    Man {
        /// Write cutter.1 and a page per subcommand (cutter-orchestrate-cut.1, ...) into this
        /// folder, created if missing, instead of printing the top page.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The whole grammar: the commands of [`Cli`] and the [`Tool`] commands.
pub fn command() -> clap::Command {
    Tool::augment_subcommands(Cli::command())
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// A command about cutter itself.
    Tool(Tool),
    /// A command of the application.
    App(Cli),
}

/// Parses the process's arguments; prints help, the version or a usage error and exits
/// where clap would.
pub fn parse() -> Invocation {
    let mut cmd = command();
    let mut matches = cmd.clone().get_matches();
    let parsed = match matches.subcommand_name() {
        Some(name) if Tool::has_subcommand(name) => {
            Tool::from_arg_matches_mut(&mut matches).map(Invocation::Tool)
        }
        _ => Cli::from_arg_matches_mut(&mut matches).map(Invocation::App),
    };
    parsed.unwrap_or_else(|e| e.format(&mut cmd).exit())
}
