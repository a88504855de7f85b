//! Verifying a stored backup against its envelope: hash, framing, recipient and, when the
//! secret key is here, decryption read back by pg_restore.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cutter_core::ports::PortError;

use super::container::{compare_counts, read_container};
use super::dump::missing_tables;
use super::gpg::{normalize_fingerprint, Decrypted, Decryption};
use super::openpgp::openpgp_framing;
use super::process::hash_file;
use super::{
    listed_or_none, BackupError, EnvelopeFile, GpgBackupRunner, DOCUMENT_ENVELOPE_FORMAT,
    ENVELOPE_FORMAT,
};

/// The outcome of a verification: empty `problems` means the file matches its envelope and
/// passed every check that could be run here; `notes` say which checks could not be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub location: PathBuf,
    pub expected_sha256: String,
    pub actual_sha256: String,
    pub expected_bytes: u64,
    pub actual_bytes: u64,
    pub problems: Vec<String>,
    /// The OpenPGP framing was walked to the last byte: session-key packets, then one
    /// integrity-protected encrypted data packet ending exactly at the end of the file.
    pub structure_checked: bool,
    /// Key ids (16 upper-case hex digits) the file's session-key packets are encrypted to.
    pub encrypted_to: Vec<String>,
    /// gpg's packet listing names one of the envelope recipient's keys.
    pub recipient_checked: bool,
    /// The file was decrypted (to a pipe, never to disk) and pg_restore read the dump to its
    /// end.
    pub decrypted: bool,
    /// `schema.name` of every table whose data the decrypted dump's table of contents lists.
    pub listed_tables: Vec<String>,
    /// Checks that were not run and why (not problems): no keyring given, secret key absent.
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line saying how far the check went, e.g. "decrypted and listed 2 tables:
    /// cutter.units, public.notes" or "secret key not here: structure checked only (...)".
    pub fn summary(&self) -> String {
        if self.decrypted {
            format!(
                "decrypted and listed {} table{}: {}",
                self.listed_tables.len(),
                if self.listed_tables.len() == 1 {
                    ""
                } else {
                    "s"
                },
                listed_or_none(&self.listed_tables)
            )
        } else if !self.notes.is_empty() {
            self.notes.join("; ")
        } else {
            "not decrypted: see the problems".to_string()
        }
    }
}

impl GpgBackupRunner {
    /// Verifies the backup an envelope file describes with no tools and no keyring: re-hashes
    /// it and walks its OpenPGP framing (junk, a truncated file or a plaintext dump fail).
    /// It cannot tell whom the file is encrypted to or whether it decrypts; [`verify_run`] /
    /// [`verify_envelope`] can, with the runner's gpg, GnuPG home and pg_restore. The backup
    /// is looked up next to the envelope (by the file name in `location`), so a moved
    /// backups folder still verifies.
    ///
    /// [`verify_run`]: GpgBackupRunner::verify_run
    /// [`verify_envelope`]: GpgBackupRunner::verify_envelope
    pub fn verify_backup(envelope_path: &Path) -> Result<VerifyReport, BackupError> {
        verify_with(envelope_path, None)
    }

    /// Verifies the backup an envelope file describes, fully: the hash, the framing, gpg's
    /// packet listing against the envelope recipient's key ids (the public key must be in
    /// this runner's keyring), and, when the secret key is here, decryption to a pipe read by
    /// pg_restore, whose table of contents must list the data of every envelope table.
    /// Nothing plaintext is written. Uses `gpg`, `gnupg_home` and the pg_restore next to
    /// `pg_dump`; never the database URL.
    pub fn verify_envelope(&self, envelope_path: &Path) -> Result<VerifyReport, BackupError> {
        verify_with(envelope_path, Some(self))
    }

    /// `cutter backup verify RUN_ID`: [`verify_envelope`](Self::verify_envelope) of the run's
    /// backup in this runner's folder.
    pub fn verify_run(&self, run_id: &str) -> Result<VerifyReport, PortError> {
        crate::check_id("run id", run_id)?;
        Ok(self.verify_envelope(&self.envelope_path(run_id))?)
    }
}

/// The body of `verify_backup` (`tools: None`: hash and framing only) and
/// `verify_envelope` (`tools`: also the recipient, and decryption when the secret key is
/// here).
pub(super) fn verify_with(
    envelope_path: &Path,
    tools: Option<&GpgBackupRunner>,
) -> Result<VerifyReport, BackupError> {
    let bad = |detail: String| BackupError::BadEnvelope {
        path: envelope_path.to_path_buf(),
        detail,
    };
    let raw = fs::read(envelope_path).map_err(|source| BackupError::Io {
        what: "read",
        path: envelope_path.to_path_buf(),
        source,
    })?;
    let file: EnvelopeFile =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("not an envelope: {e}")))?;
    // v1 describes a pg_dump archive (read back by pg_restore), v2 a per-document backup
    // (read back through the container's own checks); each must say what it is.
    match (file.format.as_str(), &file.document) {
        (ENVELOPE_FORMAT, None) | (DOCUMENT_ENVELOPE_FORMAT, Some(_)) => {}
        (ENVELOPE_FORMAT | DOCUMENT_ENVELOPE_FORMAT, _) => {
            return Err(bad(format!(
                "format `{}` does not match its content (a document section belongs to `{DOCUMENT_ENVELOPE_FORMAT}` only)",
                file.format
            )))
        }
        (other, _) => {
            return Err(bad(format!(
                "format `{other}` is neither `{ENVELOPE_FORMAT}` nor `{DOCUMENT_ENVELOPE_FORMAT}`"
            )))
        }
    }
    let env = &file.envelope;
    let name = Path::new(&env.location)
        .file_name()
        .ok_or_else(|| bad(format!("location `{}` names no file", env.location)))?;
    let dir = match envelope_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let location = dir.join(name);
    let mut report = VerifyReport {
        location: location.clone(),
        expected_sha256: env.sha256.clone(),
        actual_sha256: String::new(),
        expected_bytes: env.bytes,
        actual_bytes: 0,
        problems: env
            .incompleteness()
            .into_iter()
            .map(|p| format!("envelope: {p}"))
            .collect(),
        structure_checked: false,
        encrypted_to: Vec::new(),
        recipient_checked: false,
        decrypted: false,
        listed_tables: Vec::new(),
        notes: Vec::new(),
    };
    let present = match hash_file(&location) {
        Ok((bytes, sha)) => {
            report.actual_bytes = bytes;
            report.actual_sha256 = sha;
            true
        }
        Err(BackupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            report
                .problems
                .push(format!("{} is missing", location.display()));
            false
        }
        Err(e) => return Err(e),
    };
    if report.actual_bytes != env.bytes {
        report.problems.push(format!(
            "size is {} bytes, the envelope says {}",
            report.actual_bytes, env.bytes
        ));
    }
    if report.actual_sha256 != env.sha256 {
        report.problems.push(format!(
            "sha256 is {}, the envelope says {}",
            report.actual_sha256, env.sha256
        ));
    }
    if !present {
        return Ok(report);
    }
    // The hash only says the file is the one the envelope describes; an envelope can be
    // edited to describe junk. The checks below look at what the file is.
    match openpgp_framing(&location) {
        Ok(framing) => {
            report.structure_checked = true;
            report.encrypted_to = framing.key_ids;
        }
        Err(detail) => {
            report.problems.push(format!(
                "{} is not an OpenPGP message of the kind cutter writes: {detail}",
                location.display()
            ));
            return Ok(report);
        }
    }
    let Some(runner) = tools else {
        report.notes.push(
            "no gpg keyring given: framing checked only (recipient and contents not checked; verify_run checks them)"
                .into(),
        );
        return Ok(report);
    };
    let checked = normalize_fingerprint(&env.recipient).and_then(|fpr| {
        let key = runner.recipient_key(&fpr)?;
        runner.check_ciphertext(&location, &fpr, &key.key_ids)?;
        Ok(fpr)
    });
    let fpr = match checked {
        Ok(fpr) => fpr,
        Err(e) => {
            report.problems.push(format!("failed to {e}"));
            return Ok(report);
        }
    };
    report.recipient_checked = true;
    if let Some(document) = &file.document {
        let read = runner.decrypt_with(&location, &fpr, |plain| {
            read_container(plain, |_, _| Ok(())).map(|(_, counts)| counts)
        });
        match read {
            Ok(Decrypted::Read(counts)) => {
                report.decrypted = true;
                if let Err(detail) = compare_counts(&document.tables, &counts) {
                    report.problems.push(detail);
                }
                report.listed_tables = counts
                    .iter()
                    .map(|c| {
                        let s = if c.rows == 1 { "" } else { "s" };
                        format!("{} ({} row{s})", c.table, c.rows)
                    })
                    .collect();
            }
            Ok(Decrypted::Skipped(reason)) => report.notes.push(format!(
                "secret key not here: structure checked only ({reason})"
            )),
            Err(e) => report.problems.push(format!("failed to {e}")),
        }
        return Ok(report);
    }
    match runner.decrypt_and_list(&location, &fpr, None) {
        Ok(Decryption::Listed(facts)) => {
            report.decrypted = true;
            let missing = missing_tables(&env.tables, &facts.data_tables);
            if !missing.is_empty() {
                report.problems.push(format!(
                    "the decrypted dump holds no data of {} (its table of contents lists data of: {})",
                    missing.join(", "),
                    listed_or_none(&facts.data_tables)
                ));
            }
            report.listed_tables = facts.data_tables;
        }
        Ok(Decryption::Skipped(reason)) => report.notes.push(format!(
            "secret key not here: structure checked only ({reason})"
        )),
        Err(e) => report.problems.push(format!("failed to {e}")),
    }
    Ok(report)
}
