//! The help texts of the command-line definition: the `Examples:` section of every command's
//! `--help` (a unit test in `docs.rs` parses every example line with the real parser).

use crate::exit::EXIT_CODES_HELP;

/// `cutter` itself: the examples, then the exit codes.
pub fn top_after_help() -> String {
    format!("{TOP}\n\n{EXIT_CODES_HELP}")
}

/// `cutter orchestrate`: the examples, then the exit codes.
pub fn orchestrate_after_help() -> String {
    format!("{ORCHESTRATE}\n\n{EXIT_CODES_HELP}")
}

const TOP: &str = "Examples:
  # Try it from the repository root (its cutter.toml): the plan of the sample, then a
  # self-approved dry-run rehearsal through both gates to closeout
  cutter plan samples/sample-charter.md
  cutter orchestrate cut samples/sample-charter.md --document-id SAMPLE-CHARTER --mode dry-run --self-approve
  # What changed between two texts, unit by unit (no database)
  cutter diff charter.md charter-2026.md
  # What is in force in the knowledge base, and what an amendment changed
  cutter show CHARTER-1
  cutter diff CHARTER-1 --from 1 --to 2
  # A new installation, then every precondition of a live run
  cutter init --dir /srv/cutter --database-url postgres://cutter_admin@localhost:5432/kb
  cutter preflight charter.md --document-id CHARTER-1
  # Shell completions and man pages
  cutter completions bash > ~/.local/share/bash-completion/completions/cutter
  cutter man --dir ~/.local/share/man/man1";

pub const INIT: &str = "Examples:
  # A commented cutter.toml and the runtime folders in the current folder (dry-runs only)
  cutter init
  # A live installation: the installing user's database URL (no password) and the backup key
  cutter init --dir /srv/cutter --database-url postgres://cutter_admin@localhost:5432/kb --backup-recipient 3AA5C34371567BD2";

pub const PLAN: &str = "Examples:
  # The units of the sample, the profile detected
  cutter plan samples/sample-charter.md
  # A chosen built-in profile, and the regions it skipped
  cutter plan samples/sample-charter.md --profile markdown --coverage
  # A profile written in TOML, the plan as JSON
  cutter plan rules.txt --profile-file samples/profiles/example-profile.toml --json
  # Warnings refuse the plan; every problem or warning into a file
  cutter plan law.txt --strict --problems-out problems.txt

A plan that fails lists its first 50 problems, one per line by line, and names the grammar
profile used; --json prints {error, profile, problems: [{line, key, problem}]} on stdout
with the full list. Exit 2 for a file that is missing, empty or not UTF-8; exit 3 for a
document that does not cut into valid units, or has warnings under --strict.";

pub const SHOW: &str = "Examples:
  # The whole document as in force now
  cutter show CHARTER-1
  # One article and the units under it
  cutter show CHARTER-1 ch-2/art-14
  # As it was in force at the start of a day (UTC), or at a moment
  cutter show CHARTER-1 --as-of 2026-01-01
  cutter show CHARTER-1 --as-of 2026-07-01T12:00:00Z
  # As its version 1 left it, as JSON
  cutter show CHARTER-1 --version 1 --json

A live command: it needs [database] in the config. Unknown documents, versions and keys
exit 2 and name what was not found.";

pub const REVIEW: &str = "Examples:
  # Where the page of the gate the run waits at is, and whether it is the page the request names
  cutter review first-live-1
  # A copy built again now, to open or diff (review-SG_1.html and review-SG_1.md)
  cutter review first-live-1 --out /tmp/review

The page is written into the run's reports when the run reaches SG_1 or SG_2; the approval
request names it and its sha256, and `cutter approve sign` signs that sha256. Exit 3 when the
page in the reports does not hash to the recorded sha256, or when the page built again differs
(what is in force changed since the gate). A file without a run: cutter plan FILE --format html.";

pub const DIFF: &str = "Examples:
  # Two enacted versions of a document in the knowledge base
  cutter diff CHARTER-1 --from 1 --to 2
  cutter diff CHARTER-1 --from 1 --to 2 --json
  # Two files, no database: both cut with the same profile (the one given, else the one
  # detected in the old file, which the output names)
  cutter diff charter.md charter-2026.md
  cutter diff law-2019.txt law-2024.txt --profile vn-legal

Two arguments compare files; one DOCUMENT_ID with --from and --to compares versions in the
knowledge base. The new file is compared as if the old one were enacted (every unit version
1), so a changed unit reads version 1 -> 2, as its first amendment would number it.
Unchanged units are only counted; removed words are shown [-so-], added ones {+so+}.";

const ORCHESTRATE: &str = "Examples:
  cutter orchestrate cut samples/sample-charter.md --document-id SAMPLE-CHARTER --mode dry-run --self-approve
  cutter orchestrate cut charter.md --document-id CHARTER-1 --mode live
  cutter orchestrate resume charter-1-20260105T093000Z-1a2b3c --approval sg1.toml --arm 10m
  cutter orchestrate status";

pub const CUT: &str = "Examples:
  # A dry-run rehearsal through both gates in one command (self-approved, labelled so)
  cutter orchestrate cut samples/sample-charter.md --document-id SAMPLE-CHARTER --mode dry-run --self-approve
  # A live run: phases 1-5, then it waits at SG_1 for a signed approval
  cutter orchestrate cut charter.md --document-id CHARTER-1 --mode live
  # A chosen profile and run id, the run printed as JSON
  cutter orchestrate cut law.txt --document-id LAW-2024-12 --mode dry-run --profile vn-legal --run-id law-2024-12-rehearsal-1 --json
  # Stop at cutplan (STOP_PARSER_WARNINGS) if any line that looks like a heading was read as text
  cutter orchestrate cut law.txt --document-id LAW-2024-12 --mode dry-run --strict";

pub const RESUME: &str = "Examples:
  # Through the gate with a signed approval, armed for ten minutes (live)
  cutter orchestrate resume charter-1-20260105T093000Z-1a2b3c --approval sg1.toml --arm 10m
  # After an interruption or a crash: continue where the run stopped
  cutter orchestrate resume charter-1-20260105T093000Z-1a2b3c --arm 10m
  # A dry-run through SG_2 (no arming), the run printed as JSON
  cutter orchestrate resume charter-1-20260105T093000Z-1a2b3c --approval sg2.toml --json";

pub const VOID: &str = "Examples:
  # Cancel a run paused at a gate (its drafts are retired)
  cutter orchestrate void charter-1-20260105T093000Z-1a2b3c --reason \"wrong edition\" --arm 10m
  # Units were enacted: retire them under a signed compensation approval
  cutter orchestrate void charter-1-20260105T093000Z-1a2b3c --approval sgc.toml --arm 10m";

pub const REVERT: &str = "Examples:
  # What would be retired, applying nothing
  cutter orchestrate revert charter-1-20260105T093000Z-1a2b3c --plan-only
  # Request, sign, then apply the compensation (SG_C)
  cutter approve request charter-1-20260105T093000Z-1a2b3c --compensation --reason \"superseded by the 2026 edition\" --out sgc.toml
  cutter approve sign sgc.toml --key ada.key --approver \"Ada Approver\" --out sgc.toml
  cutter orchestrate revert charter-1-20260105T093000Z-1a2b3c --approval sgc.toml --arm 10m";

pub const BATCH: &str = "Examples:
  # Register and cut every document of the manifest, four workers here
  cutter orchestrate batch laws.toml --workers 4 --register
  # Another process or machine joins the same batch with two more workers
  cutter orchestrate batch laws.toml --workers 2";

pub const BATCH_RESUME: &str = "Examples:
  cutter approve batch-request laws-3f2a1b0c9d8e --out batch-sg1.toml
  cutter orchestrate batch-resume laws-3f2a1b0c9d8e --approval batch-sg1.toml --arm 10m";

pub const BATCH_STATUS: &str = "Examples:
  cutter orchestrate batch-status laws-3f2a1b0c9d8e
  cutter orchestrate batch-status laws-3f2a1b0c9d8e --json";

pub const STATUS: &str = "Examples:
  # Every run, one line each
  cutter orchestrate status
  # One run in full, as JSON
  cutter orchestrate status charter-1-20260105T093000Z-1a2b3c --json";

pub const APPROVE: &str = "Examples:
  cutter approve request charter-1-20260105T093000Z-1a2b3c --out sg1.toml
  cutter approve sign sg1.toml --key ada.key --approver \"Ada Approver\" --out sg1.toml
  cutter approve verify sg1.toml";

pub const APPROVE_REQUEST: &str = "Examples:
  # The request for the gate the run waits at
  cutter approve request charter-1-20260105T093000Z-1a2b3c --out sg1.toml
  # A compensation request (SG_C), to void or revert enacted units
  cutter approve request charter-1-20260105T093000Z-1a2b3c --compensation --reason \"superseded by the 2026 edition\" --out sgc.toml";

pub const APPROVE_SIGN: &str = "Examples:
  cutter approve sign sg1.toml --key ada.key --approver \"Ada Approver\" --out sg1.toml
  # SG_1 of a protected document: allow it to be cut
  cutter approve sign sg1.toml --key ada.key --approver \"Ada Approver\" --protected-allowance CONSTITUTION --out sg1.toml";

pub const APPROVE_BATCH_REQUEST: &str = "Examples:
  cutter approve batch-request laws-3f2a1b0c9d8e --out batch-sg1.toml";

pub const APPROVE_VERIFY: &str = "Examples:
  cutter approve verify sg1.toml";

pub const APPROVE_TRUST: &str = "Examples:
  cutter approve trust ada.pub --name \"Ada Approver\"
  cutter approve trust ada.pub --name \"Ada Approver\" --valid-until 2027-06-30T00:00:00Z";

pub const APPROVE_REVOKE: &str = "Examples:
  cutter approve revoke ada.pub";

pub const APPROVE_KEYS: &str = "Examples:
  cutter approve keys
  cutter approve keys --json";

pub const ARM: &str = "Examples:
  # Arm for ten minutes, then the next command that moves the run writes and disarms it
  cutter arm charter-1-20260105T093000Z-1a2b3c --ttl 10m
  cutter orchestrate resume charter-1-20260105T093000Z-1a2b3c --approval sg1.toml";

pub const DISARM: &str = "Examples:
  cutter disarm charter-1-20260105T093000Z-1a2b3c";

pub const PREFLIGHT: &str = "Examples:
  cutter preflight charter.md --document-id CHARTER-1
  cutter preflight charter.md --document-id CHARTER-1 --profile markdown --json
  # Only what a dry-run needs
  cutter preflight charter.md --document-id CHARTER-1 --mode dry-run";

pub const SOURCE: &str = "Examples:
  cutter source register charter.md --document-id CHARTER-1 --title \"Charter of the club\"
  # The amended text: version 2, the pin moves to it, version 1 stays in the history
  cutter source register charter-2026.md --document-id CHARTER-1 --effective 2026-07-01
  cutter source list
  cutter source history CHARTER-1
  cutter source check CHARTER-1 charter-2026.md";

pub const SOURCE_REGISTER: &str = "Examples:
  cutter source register charter.md --document-id CHARTER-1 --title \"Charter of the club\"
  # A protected document: its SG_1 approval must allow it explicitly
  cutter source register constitution.md --document-id CONSTITUTION --title \"The Constitution\" --protected
  # An amended text of a registered document becomes its next version (a live run then cuts
  # only that one); registering a text that is already a version changes nothing
  cutter source register charter-2026.md --document-id CHARTER-1 --effective 2026-07-01";

pub const SOURCE_LIST: &str = "Examples:
  cutter source list
  cutter source list --json";

pub const SOURCE_HISTORY: &str = "Examples:
  cutter source history CHARTER-1
  cutter source history CHARTER-1 --json";

pub const SOURCE_CHECK: &str = "Examples:
  cutter source check CHARTER-1 charter.md";

pub const DB: &str = "Examples:
  cutter db init
  cutter db status";

pub const DB_INIT: &str = "Examples:
  # Roles with the passwords from the variables the config's [database] names
  cutter db init
  # A server that does not authenticate by password
  cutter db init --no-password";

pub const DB_STATUS: &str = "Examples:
  cutter db status";

pub const GRANTS: &str = "Examples:
  cutter grants show
  cutter grants expect \"$(cutter grants show --sha)\"";

pub const GRANTS_SHOW: &str = "Examples:
  cutter grants show
  cutter grants show --json
  cutter grants show --sha";

pub const GRANTS_EXPECT: &str = "Examples:
  # After reading the full matrix of `cutter grants show`
  cutter grants expect \"$(cutter grants show --sha)\"";

pub const BACKUP: &str = "Examples:
  cutter backup selftest
  cutter backup verify charter-1-20260105T093000Z-1a2b3c
  # The document as it was before the run, in an empty database
  cutter backup restore charter-1-20260105T093000Z-1a2b3c --into postgres://postgres@localhost:5432/inspect
  # Every table of the knowledge base, for a scheduled backup
  cutter backup full";

pub const BACKUP_SELFTEST: &str = "Examples:
  cutter backup selftest";

pub const BACKUP_VERIFY: &str = "Examples:
  cutter backup verify charter-1-20260105T093000Z-1a2b3c
  # A full backup, by the name `cutter backup full` printed
  cutter backup verify full-20260105T020000Z";

pub const BACKUP_RESTORE: &str = "A run's pre-write backup holds its document only: the registry row and versions, the
units, their versions, removal marks and lifecycle log, as they were when the run began.
The backup is re-hashed against its envelope and decrypted to a pipe (never to disk) with
the configured GnuPG home, which must hold the backup key's secret part; the rows load in
one transaction that commits only if every table's rows and sha256 match, so a changed or
cut-short backup leaves the target empty. The target must be an empty database: its
tables are created from the backup's column list, without keys, constraints, triggers or
grants (for reading, not for cutter to run against).

Examples:
  createdb inspect
  cutter backup restore charter-1-20260105T093000Z-1a2b3c --into postgres://postgres@localhost:5432/inspect
  # The target's password from an environment variable
  cutter backup restore charter-1-20260105T093000Z-1a2b3c --into postgres://ops@db.example:5432/inspect --password-env INSPECT_PASSWORD";

pub const BACKUP_FULL: &str =
    "pg_dump -Fc of every table of the knowledge base as the admin role, streamed into gpg
encrypted to `[backup] recipient`, proven as a run's backup was before per-document
backups (pg_restore reads it to the end, the ciphertext names the recipient, it decrypts).
Written as <backups>/full-<UTC time>.dump.gpg with its envelope. Restore it with
`gpg --decrypt FILE | pg_restore --dbname URL`.

Examples:
  cutter backup full
  cutter backup full --json";

pub const UNLOCK: &str = "Examples:
  cutter unlock CHARTER-1 --run charter-1-20260105T093000Z-1a2b3c --reason \"its machine was rebooted\"
  # The holding run is paused at a gate, and a person decided to clear it anyway
  cutter unlock CHARTER-1 --run charter-1-20260105T093000Z-1a2b3c --reason \"run abandoned\" --force";

pub const KEYGEN: &str = "Examples:
  # ~/.cutter/ada.key (0600) and ~/.cutter/ada.pub, then trust the public key
  cutter keygen --out ~/.cutter/ada
  cutter approve trust ~/.cutter/ada.pub --name \"Ada Approver\"";

pub const COMPLETIONS: &str = "Examples:
  cutter completions bash > ~/.local/share/bash-completion/completions/cutter
  cutter completions zsh > ~/.zfunc/_cutter
  cutter completions fish > ~/.config/fish/completions/cutter.fish
  # The current bash only
  source <(cutter completions bash)";

pub const MAN: &str = "Examples:
  # Read the top page now
  cutter man | man -l -
  # Install a page per command
  cutter man --dir ~/.local/share/man/man1";
