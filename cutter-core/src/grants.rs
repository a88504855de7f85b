//! The grant matrix: the privileges the cutter roles hold, in canonical form, and its sha256.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::plan::sha256_hex;

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
}
