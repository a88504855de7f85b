//! The grant matrix: the privileges the cutter roles hold, in canonical form, and its sha256.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::mode::Mode;
use crate::plan::sha256_hex;
use crate::stop::StopReason;

/// One privilege of one role on one object, e.g. (`cutter_exec`, `function public.fn_iu_create(jsonb)`, `EXECUTE`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub role: String,
    pub object: String,
    pub privilege: String,
}

impl Grant {
    pub fn new(role: &str, object: &str, privilege: &str) -> Self {
        Grant {
            role: role.to_string(),
            object: object.to_string(),
            privilege: privilege.to_ascii_uppercase(),
        }
    }

    /// `role|object|PRIVILEGE`, the line form used in the canonical text and in diffs.
    pub fn line(&self) -> String {
        format!("{}|{}|{}", self.role, self.object, self.privilege)
    }
}

/// A set of grants; sorted, so its canonical text and sha do not depend on discovery order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantMatrix {
    pub grants: BTreeSet<Grant>,
}

impl GrantMatrix {
    pub fn new(grants: impl IntoIterator<Item = Grant>) -> Self {
        GrantMatrix {
            grants: grants.into_iter().collect(),
        }
    }

    /// `cutter.grants.v1\n` then one `role|object|PRIVILEGE\n` line per grant, sorted.
    pub fn canonical_text(&self) -> String {
        let mut out = String::from("cutter.grants.v1\n");
        for g in &self.grants {
            out.push_str(&g.line());
            out.push('\n');
        }
        out
    }

    pub fn sha256(&self) -> String {
        sha256_hex(self.canonical_text().as_bytes())
    }

    /// Grants in `expected` but not here (missing) and here but not in `expected` (extra).
    pub fn diff(&self, expected: &GrantMatrix) -> (Vec<String>, Vec<String>) {
        let missing = expected
            .grants
            .difference(&self.grants)
            .map(Grant::line)
            .collect();
        let extra = self
            .grants
            .difference(&expected.grants)
            .map(Grant::line)
            .collect();
        (missing, extra)
    }
}

/// What the grant probe's matrix was held to, when it passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantCheck {
    /// The sha a person accepted (`grants.expected_sha256`).
    MatchesExpected,
    /// No sha was configured and the run is a dry-run: the designed matrix.
    MatchesDesign,
}

impl GrantCheck {
    /// The fact a phase report records.
    pub fn describe(self) -> &'static str {
        match self {
            GrantCheck::MatchesExpected => "matches",
            GrantCheck::MatchesDesign => {
                "none configured: the dry-run compared with the designed matrix"
            }
        }
    }
}

/// The `grant_probe` rule: the probed matrix against the expected sha; a live run without one
/// is stopped (nobody accepted a matrix), a dry-run without one is held to the design. Any
/// deviation is `STOP_GRANT_DELTA` with the diff against the design.
pub fn check_expected(
    expected: Option<&str>,
    mode: Mode,
    probed: &GrantMatrix,
    designed: &GrantMatrix,
) -> Result<GrantCheck, StopReason> {
    let sha = probed.sha256();
    let delta = |expected: String| {
        let (missing, extra) = probed.diff(designed);
        StopReason::GrantDelta {
            expected,
            actual: sha.clone(),
            missing,
            extra,
        }
    };
    match (expected, mode) {
        (Some(e), _) if e == sha => Ok(GrantCheck::MatchesExpected),
        (Some(e), _) => Err(delta(e.to_string())),
        (None, Mode::Live) => Err(delta(
            "none configured (run `cutter grants expect`)".to_string(),
        )),
        (None, Mode::DryRun) => {
            let (missing, extra) = probed.diff(designed);
            if missing.is_empty() && extra.is_empty() {
                Ok(GrantCheck::MatchesDesign)
            } else {
                Err(delta(designed.sha256()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_change_the_sha_and_diff_names_each_grant() {
        let a = GrantMatrix::new([
            Grant::new("r", "t", "select"),
            Grant::new("e", "f", "execute"),
        ]);
        let b = GrantMatrix::new([
            Grant::new("e", "f", "EXECUTE"),
            Grant::new("r", "t", "SELECT"),
        ]);
        assert_eq!(a.sha256(), b.sha256());
        let c = GrantMatrix::new([
            Grant::new("e", "f", "EXECUTE"),
            Grant::new("e", "t", "INSERT"),
        ]);
        assert_ne!(a.sha256(), c.sha256());
        let (missing, extra) = c.diff(&a);
        assert_eq!(missing, ["r|t|SELECT"]);
        assert_eq!(extra, ["e|t|INSERT"]);
    }

    #[test]
    fn the_probed_matrix_is_held_to_the_expected_sha_or_the_design() {
        let designed = GrantMatrix::new([Grant::new("e", "f", "EXECUTE")]);
        let other = GrantMatrix::new([
            Grant::new("e", "f", "EXECUTE"),
            Grant::new("e", "t", "INSERT"),
        ]);
        let sha = designed.sha256();
        assert_eq!(
            check_expected(Some(&sha), Mode::Live, &designed, &designed),
            Ok(GrantCheck::MatchesExpected)
        );
        // An expected sha decides even when it is not the design's.
        assert_eq!(
            check_expected(Some(&other.sha256()), Mode::Live, &other, &designed),
            Ok(GrantCheck::MatchesExpected)
        );
        let Err(StopReason::GrantDelta {
            expected,
            actual,
            extra,
            missing,
        }) = check_expected(Some(&sha), Mode::Live, &other, &designed)
        else {
            panic!("a different matrix passed")
        };
        assert_eq!((expected, actual), (sha.clone(), other.sha256()));
        assert_eq!(extra, ["e|t|INSERT"]);
        assert!(missing.is_empty());
        assert!(matches!(
            check_expected(None, Mode::Live, &designed, &designed),
            Err(StopReason::GrantDelta { expected, .. }) if expected.starts_with("none configured")
        ));
        assert_eq!(
            check_expected(None, Mode::DryRun, &designed, &designed),
            Ok(GrantCheck::MatchesDesign)
        );
        assert!(matches!(
            check_expected(None, Mode::DryRun, &other, &designed),
            Err(StopReason::GrantDelta { expected, .. }) if expected == sha
        ));
    }
}
