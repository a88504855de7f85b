//! `cutter show` and `cutter diff`: reading what is in force, and comparing two texts of a
//! document. The knowledge base is read through the verify role (`public.document_in_force`,
//! the registry); two files are cut with one profile. What is selected, what is an error and
//! how two texts differ are `cutter_core::in_force`'s.

use std::path::Path;

use cutter_core::in_force::{self, DocumentDiff};
use cutter_core::parser::{self, Parsed, ProfileDiscoverer};

use super::{discoverer, read_source, Result, WiringError};

/// Two files compared: the profile both were cut with, whether it was detected, the diff.
#[derive(Debug, Clone)]
pub struct FileDiff {
    /// The grammar profile that cut both files.
    pub profile: String,
    /// Whether the profile was detected (in the old file) rather than chosen.
    pub detected: bool,
    pub diff: DocumentDiff,
}

/// `cutter diff OLD NEW`: both files cut with the same profile — the one chosen, else the
/// one detected in `old` — and `new` compared with `old` as if `old` were enacted as a first
/// version ([`in_force::compare_plans`]). No database.
pub fn diff_files(
    old: &Path,
    new: &Path,
    profile: Option<&str>,
    profile_file: Option<&Path>,
) -> Result<FileDiff> {
    let detected = profile.is_none() && profile_file.is_none();
    let old_bytes = read_source(old)?;
    let new_bytes = read_source(new)?;
    let chosen = discoverer(profile, profile_file)?;
    let old_parsed = cut(&chosen, old, &old_bytes, None)?;
    let used = old_parsed.plan.profile.clone();
    // Detection looks at the old file only; the new one is cut with what it found.
    let same = if detected {
        let found = parser::builtin(&used).ok_or_else(|| {
            WiringError::internal(format!(
                "cut {}: profile `{used}` was detected but is no built-in",
                new.display()
            ))
        })?;
        ProfileDiscoverer::new(found)
    } else {
        chosen
    };
    let new_parsed = cut(&same, new, &new_bytes, detected.then_some(used.as_str()))?;
    let diff = in_force::compare_plans(&old_parsed.plan, &new_parsed.plan).map_err(|e| {
        WiringError::internal(format!(
            "compare {} with {}: {e}",
            new.display(),
            old.display()
        ))
    })?;
    Ok(FileDiff {
        profile: used,
        detected,
        diff,
    })
}

/// Cuts one file of a diff; a text that does not cut is refused as `cutter plan` refuses it.
fn cut(
    discoverer: &ProfileDiscoverer,
    path: &Path,
    bytes: &[u8],
    detected_in_old: Option<&str>,
) -> Result<Parsed> {
    discoverer
        .parse(&path.display().to_string(), bytes)
        .map_err(|e| {
            let hint = detected_in_old.map_or_else(String::new, |p| {
                format!(" (with profile `{p}`, detected in the old file; choose another with --profile)")
            });
            WiringError::refused(format!("cut {}{hint}: {e}", path.display()))
        })
}

#[cfg(feature = "postgres")]
pub use live::{diff_versions, show};

#[cfg(feature = "postgres")]
mod live {
    use cutter_core::in_force::{self, DocumentDiff, InForceUnit, When};
    use cutter_core::ports::ExecutionTarget as _;

    use super::super::live::LiveDb;
    use super::super::{Adapters, Result, WiringError};

    /// The document as it is (or was) in force: checked against the registry, read through
    /// the verify role (by key; [`in_force::select`] puts them in document order).
    async fn read(db: &LiveDb, document_id: &str, when: When) -> Result<Vec<InForceUnit>> {
        crate::check_id("document id", document_id).map_err(WiringError::usage)?;
        let entry = db
            .target
            .registered_source(document_id)
            .await
            .map_err(WiringError::internal)?;
        in_force::check_version(document_id, entry.map(|e| e.version_no), when)
            .map_err(WiringError::usage)?;
        db.target
            .in_force(document_id, when.as_of(), when.version())
            .await
            .map_err(WiringError::internal)
    }

    /// `cutter show`: the units of `document_id` in force `when`, in document order — all of
    /// them, or the unit `key` and its subtree.
    pub async fn show(
        env: &Adapters,
        document_id: &str,
        key: Option<&str>,
        when: When,
    ) -> Result<Vec<InForceUnit>> {
        let what = format!("show {document_id}");
        let db = LiveDb::build(&env.config, &env.actor).map_err(|e| e.context(&what))?;
        let units = read(&db, document_id, when).await?;
        let selected = in_force::select(document_id, &units, key, when)
            .map_err(WiringError::usage)?
            .into_iter()
            .cloned()
            .collect();
        Ok(selected)
    }

    /// `cutter diff DOCUMENT_ID --from N --to M`: the document at version `to` compared with
    /// it at version `from`, unit by unit.
    pub async fn diff_versions(
        env: &Adapters,
        document_id: &str,
        from: u32,
        to: u32,
    ) -> Result<DocumentDiff> {
        let what = format!("diff {document_id}");
        let db = LiveDb::build(&env.config, &env.actor).map_err(|e| e.context(&what))?;
        let at = |version: u32| {
            let db = &db;
            async move {
                let when = When::Version(version);
                let units = read(db, document_id, when).await?;
                // Nothing enacted by that version is an error naming it, as for `show`.
                in_force::select(document_id, &units, None, when).map_err(WiringError::usage)?;
                Ok::<_, WiringError>(units)
            }
        };
        let old = at(from).await?;
        let new = at(to).await?;
        in_force::compare(&old, &new).map_err(|e| {
            WiringError::internal(format!(
                "compare {document_id} version {to} with version {from}: {e}"
            ))
        })
    }
}
