//! SIGINT and SIGTERM: the command stops where it is and every live run it had in hand is
//! disarmed before the process exits. Dropping the command's future rolls back an open write
//! transaction (nothing half-written) and leaves each run at its last saved state, which
//! `resume` continues from. A process killed outright (SIGKILL) cannot do this; its arming
//! ends at its expiry, which is short for that reason (10 minutes by default).

use std::sync::{Mutex, MutexGuard};

use anyhow::anyhow;
use cutter_adapters::pg::PgKillSwitch;
use cutter_core::ports::KillSwitch;

use crate::exit::{CliError, Code};

/// The live runs this process may have armed, with the kill-switch to disarm each.
static WATCHED: Mutex<Vec<(String, PgKillSwitch)>> = Mutex::new(Vec::new());

fn watched() -> MutexGuard<'static, Vec<(String, PgKillSwitch)>> {
    WATCHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Disarm `run_id` if the command is interrupted.
pub fn watch(run_id: &str, kill: PgKillSwitch) {
    let mut w = watched();
    if !w.iter().any(|(id, _)| id == run_id) {
        w.push((run_id.to_string(), kill));
    }
}

/// `run_id`'s arming is meant to outlive this command (`cutter arm`).
pub fn forget(run_id: &str) {
    watched().retain(|(id, _)| id != run_id);
}

/// Which signal ended the command.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Interrupt,
    Terminate,
}

/// Waits for SIGINT or SIGTERM. If the handlers cannot be installed it waits for ever (the
/// command then runs as it would without them).
pub async fn signalled() -> Signal {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
    }
}

/// Disarms every watched run and returns the error the process exits with.
pub async fn disarm_all(signal: Signal) -> CliError {
    let runs: Vec<(String, PgKillSwitch)> = watched().drain(..).collect();
    let mut lines = Vec::new();
    for (run_id, kill) in runs {
        match kill.disarm(&run_id).await {
            Ok(()) => lines.push(format!("run {run_id} disarmed")),
            Err(e) => lines.push(format!(
                "run {run_id} NOT disarmed ({e}); its arming ends at its expiry, or run `cutter disarm {run_id}`"
            )),
        }
    }
    let (code, name) = match signal {
        Signal::Interrupt => (Code::Interrupted, "SIGINT"),
        Signal::Terminate => (Code::Terminated, "SIGTERM"),
    };
    let detail = if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join("; "))
    };
    CliError {
        code,
        error: anyhow!(
            "finish the command: stopped by {name}; any open write was rolled back and the run keeps its last saved state (resume it){detail}"
        ),
    }
}
