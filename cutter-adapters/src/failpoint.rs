//! Named fail points for crash tests: places where a test can make cutter fail or die on
//! purpose. Compiled to nothing unless the `failpoints` feature is on, which only the test
//! builds turn on (a release build has none).
//!
//! With the feature on, `CUTTER_FAILPOINTS` lists `name=action` pairs, comma-separated:
//! `error` makes the call fail with a transient error (as a lost connection would), `abort`
//! ends the process on the spot (no destructors, no flush: as `kill -9` would), `trace` only
//! prints the name, and `pause` (at the points reached through [`hit_async`]) waits two
//! minutes without blocking the runtime, so a test can signal or kill the process in the
//! middle of an open write. Every hit prints `failpoint NAME` to stderr first, so a test can
//! tell which points a run passes and whether one fired.

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
        None | Some("pause") => Ok(()),
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

/// As [`hit`], and `pause` waits (asynchronously) two minutes before going on.
#[cfg(feature = "failpoints")]
pub async fn hit_async(name: &str) -> Result<(), PortError> {
    let paused = std::env::var(FAILPOINTS_ENV).ok().is_some_and(|spec| {
        spec.split(',').any(|pair| {
            pair.split_once('=')
                .is_some_and(|(n, a)| (n.trim() == name || n.trim() == "*") && a.trim() == "pause")
        })
    });
    if paused {
        eprintln!("failpoint {name} (pause)");
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        return Ok(());
    }
    hit(name)
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) -> Result<(), PortError> {
    Ok(())
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn hit_async(_name: &str) -> Result<(), PortError> {
    Ok(())
}
