//! Named fail points for crash tests: places where a test can make cutter fail or die on
//! purpose. Compiled to nothing unless the `failpoints` feature is on, which only the test
//! builds turn on (a release build has none).
//!
//! With the feature on, `CUTTER_FAILPOINTS` lists `name=action` pairs, comma-separated:
//! `error` makes the call fail with a transient error (as a lost connection would), `abort`
//! ends the process on the spot (no destructors, no flush: as `kill -9` would), `trace` only
//! prints the name. Every hit prints `failpoint NAME` to stderr first, so a test can tell
//! which points a run passes and whether one fired.

use cutter_core::ports::PortError;

/// The environment variable the fail points are read from.
pub const FAILPOINTS_ENV: &str = "CUTTER_FAILPOINTS";

/// Passes, fails or aborts, as `CUTTER_FAILPOINTS` says for `name`.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) -> Result<(), PortError> {
    let Ok(spec) = std::env::var(FAILPOINTS_ENV) else {
        return Ok(());
    };
    let action = spec.split(',').find_map(|pair| {
        let (n, a) = pair.split_once('=')?;
        (n.trim() == name || n.trim() == "*").then(|| a.trim().to_string())
    });
    match action.as_deref() {
        None => Ok(()),
        Some("trace") => {
            eprintln!("failpoint {name} (trace)");
            Ok(())
        }
        Some("abort") => {
            eprintln!("failpoint {name} (abort)");
            std::process::abort()
        }
        Some(_) => {
            eprintln!("failpoint {name} (error)");
            Err(PortError::Transient(format!("failpoint {name} injected")))
        }
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) -> Result<(), PortError> {
    Ok(())
}
