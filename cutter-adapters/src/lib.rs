//! cutter-adapters: the effects behind cutter-core's ports — files, PostgreSQL, pg_dump + gpg
//! backups and report publishing. Every failure is translated into a `PortError` here, so
//! nothing platform-specific reaches the core.
//!
//! # Features for embedders
//!
//! An embedder pays only for the stacks it uses. Both features are on by default (the
//! `cutter` binary uses them all):
//!
//! | feature    | turns on                                                        | pulls in |
//! |------------|-----------------------------------------------------------------|----------|
//! | `postgres` | `pg` (the live target, grants, provisioning, locks, batches, TLS) and `backup` (pg_dump + gpg) | tokio-postgres, deadpool-postgres, postgres-protocol, refinery, rustls, tokio-postgres-rustls, rustls-pki-types |
//! | `publish`  | `publish` (reports POSTed over HTTP(S), with an outbox)       | ureq |
//! | `failpoints` | named fail points for crash tests ([`failpoint`]); never in a normal build | — |
//!
//! A dry-run embedder (the simulator from cutter-core with the file adapters here: [`config`],
//! [`state_store`], [`reporter`], [`killswitch`], [`source`], [`keys`], [`clock`]) needs
//! neither:
//!
//! ```toml
//! cutter-adapters = { version = "0.1", default-features = false }
//! ```
//!
//! Without `postgres`, `cutter.toml`'s `[database]` section is still read and checked (the
//! URL's password and database name are found without the PostgreSQL client); without
//! `publish`, `[publish] url` is still checked with [`config::check_publish_url`]. Nothing
//! can connect or send without the feature, so a config loads the same either way.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod atomic;
#[cfg(feature = "postgres")]
pub mod backup;
pub mod clock;
pub mod config;
pub mod failpoint;
pub mod keys;
pub mod killswitch;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "publish")]
pub mod publish;
pub mod redact;
pub mod reporter;
pub mod source;
pub mod state_store;
pub mod wiring;

/// Checks that an id is safe to use as a file name: letters, digits, `-`, `_`, `.`, not
/// starting with a dot, at most 128 bytes. Run and document ids become paths, so anything
/// else (a `/`, `..`, a NUL) is refused rather than escaped.
pub fn check_id(kind: &str, id: &str) -> Result<(), cutter_core::ports::PortError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(cutter_core::ports::PortError::Other(format!(
            "use {kind} `{}`: only letters, digits, '-', '_' and '.' are allowed (at most 128, not starting with '.')",
            id.escape_debug()
        )))
    }
}

/// Whether a host name or address is this machine: a plain connection to it never crosses a
/// network (the database's TLS check and the report endpoint's https rule both ask this).
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

/// Opens, creating it and its folder if need be, a file that exists for its OS lock (a
/// document claim, a run's drive lock, the report outbox). It is never truncated on open: a
/// holder's note must survive another process opening the file to wait for it.
pub(crate) fn open_lock_file(
    path: &std::path::Path,
) -> Result<std::fs::File, cutter_core::ports::PortError> {
    use cutter_core::ports::PortError;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| PortError::Other(format!("create {}: {e}", parent.display())))?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| PortError::Other(format!("open lock file {}: {e}", path.display())))
}
