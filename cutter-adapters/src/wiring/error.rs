//! The one error type of the wiring layer, classified the way a caller maps it to an exit code
//! (bad input, a governance refusal, an internal failure).

use cutter_core::ports::PortError;
use cutter_core::OrchestratorError;

/// What went wrong while building adapters or carrying out a command around a run.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// Bad arguments, config, approval or manifest file, or a command that does not apply.
    #[error("{0}")]
    Usage(String),
    /// A governance rule refused the command (a lock held, a run not rehearsed, a pin that
    /// disagrees with the registry, another knowledge base).
    #[error("{0}")]
    Refused(String),
    /// An adapter or I/O failure.
    #[error("{0}")]
    Internal(String),
    /// The orchestrator's own answer, kept whole so its governance class survives.
    #[error(transparent)]
    Orchestrator(Box<OrchestratorError>),
}

/// How a caller should treat a [`WiringError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Usage,
    Governance,
    Internal,
}

impl WiringError {
    pub fn usage(e: impl std::fmt::Display) -> Self {
        WiringError::Usage(e.to_string())
    }

    pub fn refused(e: impl std::fmt::Display) -> Self {
        WiringError::Refused(e.to_string())
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        WiringError::Internal(e.to_string())
    }

    /// The class an exit code is chosen by.
    pub fn class(&self) -> ErrorClass {
        match self {
            WiringError::Usage(_) => ErrorClass::Usage,
            WiringError::Refused(_) => ErrorClass::Governance,
            WiringError::Internal(_) => ErrorClass::Internal,
            WiringError::Orchestrator(e) if e.is_governance() => ErrorClass::Governance,
            WiringError::Orchestrator(e) => match **e {
                OrchestratorError::Illegal { .. } | OrchestratorError::Usage(_) => {
                    ErrorClass::Usage
                }
                _ => ErrorClass::Internal,
            },
        }
    }

    /// Prefixes the message with what was being done (`context: message`), keeping the class.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        match self {
            WiringError::Usage(m) => WiringError::Usage(format!("{what}: {m}")),
            WiringError::Refused(m) => WiringError::Refused(format!("{what}: {m}")),
            WiringError::Internal(m) => WiringError::Internal(format!("{what}: {m}")),
            other => other,
        }
    }
}

impl From<OrchestratorError> for WiringError {
    fn from(e: OrchestratorError) -> Self {
        WiringError::Orchestrator(Box::new(e))
    }
}

impl From<PortError> for WiringError {
    fn from(e: PortError) -> Self {
        match e {
            busy @ PortError::Busy { .. } => WiringError::Refused(busy.to_string()),
            other => WiringError::Internal(other.to_string()),
        }
    }
}
