//! Exit codes, documented in `--help` and the README, and the error type that carries one.

use std::process::ExitCode;

/// What the process exit status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Done, or paused at a gate waiting for an approval.
    Success = 0,
    /// An adapter or I/O failure; the run keeps its last saved state and can be resumed.
    Internal = 1,
    /// Bad arguments, config or approval file, a command that does not apply to the run, or
    /// an input file that is missing or unreadable as text (empty, not UTF-8).
    Usage = 2,
    /// A governance check stopped the run or refused the command (drift, lock, grants,
    /// approval, kill-switch, mode mismatch, invalid units).
    Governance = 3,
    /// Stopped by SIGINT (Ctrl-C): open writes rolled back, the run disarmed.
    Interrupted = 130,
    /// Stopped by SIGTERM: open writes rolled back, the run disarmed.
    Terminated = 143,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> Self {
        ExitCode::from(code as u8)
    }
}

/// The help text's exit-code section.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  success, or the run is paused at a gate waiting for an approval
  1  internal failure (I/O, adapter); the run keeps its last saved state and can be resumed
  2  usage or input error: bad arguments, config or approval file, a command that does not
     apply, something named that does not exist (a run; for show and diff a document,
     version or key), or a source file that is missing, not a regular file, too large,
     empty or not UTF-8
  3  stopped or refused by a governance check (drift, lock, grants, approval, kill-switch,
     mode mismatch, invalid units, parser warnings under --strict, another knowledge base, a
     state file that disagrees with the knowledge base; for plan, a document that does not
     cut into valid units or, with --strict, has warnings); the reason is printed and recorded in the run's reports
  130, 143  stopped by SIGINT / SIGTERM: an open write was rolled back, the run keeps its
     last saved state and was disarmed";

/// The result of a command.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: Code,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code: Code::Usage,
            error: error.into(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code: Code::Internal,
            error: error.into(),
        }
    }
}

impl From<cutter_core::OrchestratorError> for CliError {
    fn from(e: cutter_core::OrchestratorError) -> Self {
        use cutter_core::OrchestratorError as E;
        let code = match &e {
            _ if e.is_governance() => Code::Governance,
            E::Illegal { .. } | E::Usage(_) => Code::Usage,
            _ => Code::Internal,
        };
        CliError {
            code,
            error: e.into(),
        }
    }
}

impl From<cutter_adapters::wiring::WiringError> for CliError {
    fn from(e: cutter_adapters::wiring::WiringError) -> Self {
        use cutter_adapters::wiring::{ErrorClass, WiringError};
        let code = match e.class() {
            ErrorClass::Usage => Code::Usage,
            ErrorClass::Governance => Code::Governance,
            ErrorClass::Internal => Code::Internal,
        };
        match e {
            WiringError::Orchestrator(o) => CliError::from(*o),
            other => CliError {
                code,
                error: other.into(),
            },
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}
