//! cutter-core: the pure heart of cutter. It decides; the adapters act.
//!
//! Nothing in this crate touches a file, a socket, a process or the clock. Time comes in through
//! the [`ports::Clock`] port, bytes through [`ports::SourceReader`], and every effect goes out
//! through a port trait that `cutter-adapters` implements (or the in-memory [`simulator`]).
//!
//! Start reading at [`orchestrator`], which drives the eleven [`phase::Phase`]s through the
//! transition table in [`state`].
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod approval;
pub mod approval_file;
pub mod arming;
pub mod batch;
pub mod batch_approval;
pub mod builders;
pub mod change;
pub mod compensation;
pub mod discover;
pub mod grants;
pub mod in_force;
pub mod intake;
pub mod locks;
pub mod mode;
pub mod orchestrator;
pub mod parser;
pub mod phase;
pub mod plan;
pub mod ports;
pub mod preflight;
pub mod review;
pub mod run;
pub mod signing;
pub mod simulator;
pub mod state;
pub mod stop;
pub mod text;
pub mod verify;

pub use mode::Mode;
pub use orchestrator::{CutRequest, Orchestrator, OrchestratorError, Ports};
pub use phase::{Gate, Phase};
pub use plan::{CutPlan, Unit};
pub use state::RunState;
pub use stop::{ApprovalRejection, StopReason};
