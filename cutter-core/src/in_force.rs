//! Reading what is in force (issue 15): the units of a document as the knowledge base holds
//! them in force at a moment or a document version ([`InForceUnit`], read by the adapters from
//! `public.document_in_force`), which of them a reader asked for ([`select`]), whether the
//! question can be answered at all ([`check_version`], [`ReadError`]), and how two texts of a
//! document differ unit by unit ([`compare`], [`compare_plans`]) — the classification of the
//! change plan ([`crate::change::diff`]) with the word-level changes of each title and body
//! ([`crate::text::word_diff`]).
//!
//! `cutter show` and `cutter diff` print these; nothing here reads a database or a file.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::change::{
    diff, tree_order, ChangeCounts, ChangeError, ChangeKind, ChangePlan, EnactedDocument,
    EnactedUnit, TreeNode,
};
use crate::plan::{sha256_hex, CutPlan, ProvisionStatus, Unit};
use crate::text::{word_diff, WordChange};

/// A unit as it is (or was) in force, with its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InForceUnit {
    pub key: String,
    /// The unit's version in force (1 for a unit never amended).
    pub version_no: u32,
    /// The document version that brought this version of the unit into force.
    pub document_version: u32,
    pub parent: Option<String>,
    pub ordinal: u32,
    pub unit_kind: String,
    pub section_type: String,
    pub title: String,
    pub body: String,
    pub body_sha256: String,
    pub status: ProvisionStatus,
    /// When this version came into force.
    pub in_force_from: DateTime<Utc>,
}

impl TreeNode for InForceUnit {
    fn node_key(&self) -> &str {
        &self.key
    }
    fn node_parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }
    fn node_ordinal(&self) -> u32 {
        self.ordinal
    }
}

/// Which text of a document is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    /// What is in force now.
    #[default]
    Now,
    /// What was (or will be) in force at a moment.
    AsOf(DateTime<Utc>),
    /// The document as its version `n` left it (every unit at its latest version enacted with
    /// document version `n` or an earlier one).
    Version(u32),
}

impl When {
    /// The moment to ask the knowledge base for (`None`: now, or by version).
    pub fn as_of(self) -> Option<DateTime<Utc>> {
        match self {
            When::AsOf(t) => Some(t),
            When::Now | When::Version(_) => None,
        }
    }

    /// The document version to ask for.
    pub fn version(self) -> Option<u32> {
        match self {
            When::Version(n) => Some(n),
            When::Now | When::AsOf(_) => None,
        }
    }
}

impl fmt::Display for When {
    /// `now`, `as of 2026-07-01T00:00:00Z`, `at version 2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Now => f.write_str("now"),
            When::AsOf(t) => write!(
                f,
                "as of {}",
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ),
            When::Version(n) => write!(f, "at version {n}"),
        }
    }
}

/// Why a question about what is in force has no answer. Each is the reader's mistake (a
/// document, version or key that does not exist), not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The knowledge base does not hold the document.
    #[error("find document {document_id}: the knowledge base has no document with that id (`cutter source list` lists them)")]
    UnknownDocument { document_id: String },
    /// A document version the registry does not have.
    #[error("read {document_id} at version {version}: it has no such version; its versions are 1 to {latest} (`cutter source history {document_id}` lists them)")]
    NoSuchVersion {
        document_id: String,
        version: u32,
        latest: u32,
    },
    /// Nothing of the document is (or was) in force then.
    #[error("read {document_id} {when}: nothing of it is in force {when}; no version of it had been enacted by then (`cutter source history {document_id}` lists its versions)")]
    NothingInForce { document_id: String, when: String },
    /// No unit with that key is in force then.
    #[error("find unit `{key}` of {document_id} {when}: no unit with that key is in force {when} (`cutter show {document_id}` lists the keys)")]
    KeyNotInForce {
        document_id: String,
        key: String,
        when: String,
    },
}

/// Whether `when` can be asked of `document_id`: the document is registered (its latest
/// version is `latest`, `None` when it is not registered) and an asked version is one of its
/// versions.
pub fn check_version(document_id: &str, latest: Option<u32>, when: When) -> Result<(), ReadError> {
    let Some(latest) = latest else {
        return Err(ReadError::UnknownDocument {
            document_id: document_id.to_string(),
        });
    };
    match when.version() {
        Some(version) if version == 0 || version > latest => Err(ReadError::NoSuchVersion {
            document_id: document_id.to_string(),
            version,
            latest,
        }),
        _ => Ok(()),
    }
}

/// The units a reader asked for, in document order: all of them, or the unit `key` and every
/// unit under it. Nothing in force at all, or no unit `key`, is an error naming it.
pub fn select<'a>(
    document_id: &str,
    units: &'a [InForceUnit],
    key: Option<&str>,
    when: When,
) -> Result<Vec<&'a InForceUnit>, ReadError> {
    if units.is_empty() {
        return Err(ReadError::NothingInForce {
            document_id: document_id.to_string(),
            when: when.to_string(),
        });
    }
    let ordered = tree_order(units);
    let Some(key) = key else {
        return Ok(ordered);
    };
    if !units.iter().any(|u| u.key == key) {
        return Err(ReadError::KeyNotInForce {
            document_id: document_id.to_string(),
            key: key.to_string(),
            when: when.to_string(),
        });
    }
    // The subtree: `key`, then every unit whose parent is already in it (tree order puts a
    // parent before its children).
    let mut inside: HashSet<&str> = HashSet::from([key]);
    Ok(ordered
        .into_iter()
        .filter(|u| {
            let keep = u.key == key || u.parent.as_deref().is_some_and(|p| inside.contains(p));
            if keep {
                inside.insert(u.key.as_str());
            }
            keep
        })
        .collect())
}

/// Where a unit sits: its parent and its ordinal among its siblings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub parent: Option<String>,
    pub ordinal: u32,
}

/// One unit of a [`DocumentDiff`]: its change, and the word-level changes of what differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDiff {
    pub key: String,
    pub kind: ChangeKind,
    /// The fields that differ (as [`crate::change::UnitChange::fields`]).
    pub fields: Vec<String>,
    /// The unit's version in the old text (`None` for an added unit).
    pub from_version: Option<u32>,
    /// The unit's version in the new text (`None` for a removed unit).
    pub to_version: Option<u32>,
    /// The title, word by word: when it changed, and the whole title of an added (all added)
    /// or removed (all removed) unit.
    pub title_diff: Option<Vec<WordChange>>,
    /// The body, likewise.
    pub body_diff: Option<Vec<WordChange>>,
    /// Old and new provision status, when it changed.
    pub status: Option<(ProvisionStatus, ProvisionStatus)>,
    /// Old and new place, for a moved unit.
    pub place: Option<(Place, Place)>,
}

/// Two texts of a document compared unit by unit: every unit that differs, in the new text's
/// order and then the removed units in the old text's order, and how many units of each kind
/// (unchanged units are only counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentDiff {
    pub counts: ChangeCounts,
    pub changes: Vec<UnitDiff>,
}

/// The title and body of a unit, by key.
pub(crate) type Texts<'a> = HashMap<&'a str, (&'a str, &'a str)>;

/// Compares two texts of a document as the knowledge base holds them in force (e.g. at two
/// document versions), each unit with its own version number: the classification is the
/// change plan's ([`diff`]) of `new` against `old` as enacted, the versions are the ones
/// each text has.
pub fn compare(old: &[InForceUnit], new: &[InForceUnit]) -> Result<DocumentDiff, ChangeError> {
    let enacted = EnactedDocument {
        units: old.iter().map(enacted_unit).collect(),
        retired: Vec::new(),
    };
    let plan = CutPlan::new(
        "in-force",
        tree_order(new)
            .into_iter()
            .map(|u| {
                Unit::new(
                    u.key.clone(),
                    u.parent.clone(),
                    u.ordinal,
                    u.unit_kind.clone(),
                    u.section_type.clone(),
                    u.title.clone(),
                    u.body.clone(),
                    (0, 0),
                )
                .with_status(u.status)
            })
            .collect(),
    );
    let change = diff(&enacted, &plan)?;
    let new_versions: HashMap<&str, u32> =
        new.iter().map(|u| (u.key.as_str(), u.version_no)).collect();
    let old_texts: Texts = old
        .iter()
        .map(|u| (u.key.as_str(), (u.title.as_str(), u.body.as_str())))
        .collect();
    let mut out = describe(&change, &enacted, &old_texts, &plan);
    // The versions the new text has (a unit amended twice between the two is two versions
    // on), not the one the next amendment would write.
    for c in &mut out.changes {
        if c.kind != ChangeKind::Removed {
            c.to_version = new_versions.get(c.key.as_str()).copied();
        }
    }
    Ok(out)
}

/// Compares two cut plans of a document: the change plan `new` would make against `old`
/// enacted as a first version (every unit at version 1), with the word-level changes.
pub fn compare_plans(old: &CutPlan, new: &CutPlan) -> Result<DocumentDiff, ChangeError> {
    let enacted = EnactedDocument::first_version_of(old);
    let change = diff(&enacted, new)?;
    let old_texts: Texts = old
        .units
        .iter()
        .map(|u| (u.key(), (u.title(), u.body())))
        .collect();
    Ok(describe(&change, &enacted, &old_texts, new))
}

/// The enacted form of a unit in force (its body hashed here, as a plan's unit is).
pub(crate) fn enacted_unit(u: &InForceUnit) -> EnactedUnit {
    EnactedUnit {
        key: u.key.clone(),
        parent: u.parent.clone(),
        ordinal: u.ordinal,
        unit_kind: u.unit_kind.clone(),
        section_type: u.section_type.clone(),
        title: u.title.clone(),
        body_sha256: sha256_hex(u.body.as_bytes()),
        status: u.status,
        version_no: u.version_no,
    }
}

/// The change plan's entries that write something, with the words that changed.
pub(crate) fn describe(
    change: &ChangePlan,
    enacted: &EnactedDocument,
    old_texts: &Texts<'_>,
    new: &CutPlan,
) -> DocumentDiff {
    let old_units: HashMap<&str, &EnactedUnit> =
        enacted.units.iter().map(|u| (u.key.as_str(), u)).collect();
    let changes = change
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Unchanged)
        .map(|c| {
            let old = old_units.get(c.key.as_str()).copied();
            let (old_title, old_body) = old_texts.get(c.key.as_str()).copied().unwrap_or_default();
            let new_unit = c.plan_index.and_then(|i| new.units.get(i));
            let has = |field: &str| c.fields.iter().any(|f| f == field);
            let (title_diff, body_diff) = match (c.kind, new_unit) {
                (ChangeKind::Removed, _) | (_, None) => (
                    Some(word_diff(old_title, "")),
                    Some(word_diff(old_body, "")),
                ),
                (ChangeKind::Added, Some(n)) => (
                    Some(word_diff("", n.title())),
                    Some(word_diff("", n.body())),
                ),
                (_, Some(n)) => (
                    has("title").then(|| word_diff(old_title, n.title())),
                    has("body").then(|| word_diff(old_body, n.body())),
                ),
            };
            let status = match (old, new_unit) {
                (Some(o), Some(n)) if o.status != n.status() => Some((o.status, n.status())),
                _ => None,
            };
            let place = match (old, new_unit) {
                (Some(o), Some(n)) if c.kind == ChangeKind::Moved => Some((
                    Place {
                        parent: o.parent.clone(),
                        ordinal: o.ordinal,
                    },
                    Place {
                        parent: n.parent().map(str::to_string),
                        ordinal: n.ordinal(),
                    },
                )),
                _ => None,
            };
            UnitDiff {
                key: c.key.clone(),
                kind: c.kind,
                fields: c.fields.clone(),
                from_version: c.from_version,
                to_version: c.to_version,
                title_diff: title_diff.filter(|d| !d.is_empty()),
                body_diff: body_diff.filter(|d| !d.is_empty()),
                status,
                place,
            }
        })
        .collect();
    DocumentDiff {
        counts: change.counts,
        changes,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::text::render_word_diff;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn unit(key: &str, parent: Option<&str>, ordinal: u32, body: &str, v: u32) -> InForceUnit {
        InForceUnit {
            key: key.into(),
            version_no: v,
            document_version: v,
            parent: parent.map(str::to_string),
            ordinal,
            unit_kind: "article".into(),
            section_type: "normative".into(),
            title: format!("Article {key}"),
            body: body.into(),
            body_sha256: sha256_hex(body.as_bytes()),
            status: ProvisionStatus::InForce,
            in_force_from: at(v),
        }
    }

    fn v1() -> Vec<InForceUnit> {
        // Read back by key, as the knowledge base answers: not in document order.
        vec![
            unit("ch-1", None, 1, "Chapter one.", 1),
            unit(
                "ch-1/art-1",
                Some("ch-1"),
                1,
                "Anyone may join the club.",
                1,
            ),
            unit("ch-1/art-2", Some("ch-1"), 2, "Dues are paid yearly.", 1),
            unit("ch-2", None, 2, "Chapter two.", 1),
            unit("ch-2/art-3", Some("ch-2"), 1, "Meetings are monthly.", 1),
            unit("ch-1/art-1/a", Some("ch-1/art-1"), 1, "Point a.", 1),
        ]
    }

    fn keys(units: &[&InForceUnit]) -> Vec<String> {
        units.iter().map(|u| u.key.clone()).collect()
    }

    #[test]
    fn select_reads_the_document_in_order_or_one_subtree() {
        let units = v1();
        let all = select("D", &units, None, When::Now).unwrap();
        assert_eq!(
            keys(&all),
            [
                "ch-1",
                "ch-1/art-1",
                "ch-1/art-1/a",
                "ch-1/art-2",
                "ch-2",
                "ch-2/art-3"
            ]
        );
        let one = select("D", &units, Some("ch-1/art-1"), When::Now).unwrap();
        assert_eq!(keys(&one), ["ch-1/art-1", "ch-1/art-1/a"]);
        let leaf = select("D", &units, Some("ch-2/art-3"), When::Version(1)).unwrap();
        assert_eq!(keys(&leaf), ["ch-2/art-3"]);
        let e = select("D", &units, Some("ch-9"), When::Version(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "find unit `ch-9` of D at version 1: no unit with that key is in force at version 1 (`cutter show D` lists the keys)"
        );
        let e = select("D", &[], None, When::AsOf(at(3))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("read D as of 2026-01-03T00:00:00Z: nothing of it is in force"),
            "{e}"
        );
    }

    #[test]
    fn versions_are_checked_against_the_registry() {
        assert!(check_version("D", Some(2), When::Version(2)).is_ok());
        assert!(check_version("D", Some(2), When::Now).is_ok());
        assert!(check_version("D", Some(2), When::AsOf(at(1))).is_ok());
        assert_eq!(
            check_version("D", Some(2), When::Version(3)),
            Err(ReadError::NoSuchVersion {
                document_id: "D".into(),
                version: 3,
                latest: 2
            })
        );
        assert!(check_version("D", Some(2), When::Version(0)).is_err());
        let e = check_version("D", None, When::Now).unwrap_err();
        assert!(e.to_string().contains("no document with that id"), "{e}");
    }

    #[test]
    fn compare_classifies_and_diffs_word_by_word_with_each_texts_versions() {
        let old = v1();
        let mut new = v1();
        // art-1 amended twice since (version 3), art-2 removed, art-3 repealed (a new title
        // and status, version 2), ch-2/art-4 added.
        new[1].body = "Anyone of age may join the club.".into();
        new[1].version_no = 3;
        new.retain(|u| u.key != "ch-1/art-2");
        let i = new.iter().position(|u| u.key == "ch-2/art-3").unwrap();
        new[i].status = ProvisionStatus::Repealed;
        new[i].title = "Article ch-2/art-3 (repealed)".into();
        new[i].version_no = 2;
        new.push(unit("ch-2/art-4", Some("ch-2"), 2, "Minutes are kept.", 1));
        let d = compare(&old, &new).unwrap();
        assert_eq!(
            d.counts,
            ChangeCounts {
                unchanged: 3,
                changed: 2,
                added: 1,
                removed: 1,
                moved: 0
            }
        );
        let by = |k: &str| d.changes.iter().find(|c| c.key == k).unwrap();
        let art1 = by("ch-1/art-1");
        assert_eq!(art1.kind, ChangeKind::Changed);
        assert_eq!((art1.from_version, art1.to_version), (Some(1), Some(3)));
        assert_eq!(art1.title_diff, None);
        assert_eq!(
            render_word_diff(art1.body_diff.as_deref().unwrap()),
            "Anyone {+of age+} may join the club."
        );
        let art3 = by("ch-2/art-3");
        assert_eq!(art3.fields, ["title", "status"]);
        assert_eq!(
            art3.status,
            Some((ProvisionStatus::InForce, ProvisionStatus::Repealed))
        );
        assert_eq!(
            render_word_diff(art3.title_diff.as_deref().unwrap()),
            "Article [-ch-2/art-3-]{+ch-2/art-3 (repealed)+}"
        );
        assert_eq!(art3.to_version, Some(2));
        let added = by("ch-2/art-4");
        assert_eq!((added.from_version, added.to_version), (None, Some(1)));
        assert_eq!(
            render_word_diff(added.body_diff.as_deref().unwrap()),
            "{+Minutes are kept.+}"
        );
        let removed = by("ch-1/art-2");
        assert_eq!((removed.from_version, removed.to_version), (Some(1), None));
        assert_eq!(
            render_word_diff(removed.body_diff.as_deref().unwrap()),
            "[-Dues are paid yearly.-]"
        );
        // New-text order, then the removals.
        assert_eq!(
            d.changes.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
            ["ch-1/art-1", "ch-2/art-3", "ch-2/art-4", "ch-1/art-2"]
        );
        // The same text: nothing but unchanged units.
        let same = compare(&old, &old).unwrap();
        assert!(same.changes.is_empty());
        assert_eq!(same.counts.unchanged, 6);
    }

    #[test]
    fn a_moved_unit_says_where_it_was_and_where_it_is() {
        let old = v1();
        let mut new = v1();
        let i = new.iter().position(|u| u.key == "ch-1/art-1/a").unwrap();
        new[i].parent = Some("ch-1/art-2".into());
        new[i].version_no = 2;
        let d = compare(&old, &new).unwrap();
        assert_eq!(d.counts.moved, 1);
        let c = &d.changes[0];
        assert_eq!((c.kind, c.to_version), (ChangeKind::Moved, Some(2)));
        let (from, to) = c.place.clone().unwrap();
        assert_eq!(from.parent.as_deref(), Some("ch-1/art-1"));
        assert_eq!(to.parent.as_deref(), Some("ch-1/art-2"));
        assert_eq!((c.title_diff.clone(), c.body_diff.clone()), (None, None));
    }

    #[test]
    fn compare_plans_numbers_as_a_first_amendment_would() {
        let plan = |body: &str, extra: bool| {
            let mut units = vec![
                Unit::new("a", None, 1, "article", "normative", "A", body, (1, 2)),
                Unit::new("b", None, 2, "article", "normative", "B", "Bee.", (3, 4)),
            ];
            if extra {
                units.push(Unit::new(
                    "c",
                    None,
                    3,
                    "article",
                    "normative",
                    "C",
                    "",
                    (5, 5),
                ));
            }
            CutPlan::new("markdown", units)
        };
        let d = compare_plans(&plan("One two.", false), &plan("One three.", true)).unwrap();
        assert_eq!(d.counts.changed, 1);
        assert_eq!(d.counts.added, 1);
        assert_eq!(d.counts.unchanged, 1);
        let a = &d.changes[0];
        assert_eq!((a.from_version, a.to_version), (Some(1), Some(2)));
        assert_eq!(
            render_word_diff(a.body_diff.as_deref().unwrap()),
            "One [-two.-]{+three.+}"
        );
        // An added unit with an empty body has a title and no body diff.
        let c = &d.changes[1];
        assert_eq!(c.kind, ChangeKind::Added);
        assert_eq!(render_word_diff(c.title_diff.as_deref().unwrap()), "{+C+}");
        assert_eq!(c.body_diff, None);
    }

    #[test]
    fn when_names_itself() {
        assert_eq!(When::Now.to_string(), "now");
        assert_eq!(When::Version(2).to_string(), "at version 2");
        assert_eq!(When::AsOf(at(5)).to_string(), "as of 2026-01-05T00:00:00Z");
        assert_eq!(When::AsOf(at(5)).as_of(), Some(at(5)));
        assert_eq!(When::Version(2).version(), Some(2));
    }
}
