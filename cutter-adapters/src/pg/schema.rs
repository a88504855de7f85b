//! The names of the knowledge base's relations, in one place: every table and view the
//! migrations create, and the lists the rest of `pg` (grants, provisioning, the target, the
//! backup) and the examples take from them. A name is written here once.

/// `public.information_unit`: the units themselves.
pub const INFORMATION_UNIT: &str = "public.information_unit";
/// `public.unit_version`: every version of a unit's content.
pub const UNIT_VERSION: &str = "public.unit_version";
/// `public.iu_lifecycle_log`: every lifecycle change of a unit.
pub const IU_LIFECYCLE_LOG: &str = "public.iu_lifecycle_log";
/// `public.unit_removal`: the removal of an enacted unit by an amendment (pending, enacted or
/// withdrawn).
pub const UNIT_REMOVAL: &str = "public.unit_removal";

/// The table refinery keeps the applied migrations in, unqualified (it lives in `public`).
pub const MIGRATION_TABLE: &str = "refinery_schema_history";
/// [`MIGRATION_TABLE`], schema-qualified.
pub const MIGRATION_HISTORY: &str = "public.refinery_schema_history";

pub const SOURCE_REGISTRY: &str = "cutter_governance.source_registry";
/// `cutter_governance.source_version`: every registered text of a document (V12).
pub const SOURCE_VERSION: &str = "cutter_governance.source_version";
pub const KILL_SWITCH_ARMING: &str = "cutter_governance.kill_switch_arming";
pub const CUT_CHANGE_SET: &str = "cutter_governance.cut_change_set";
pub const CUT_CHANGE_SET_AFFECTED_ROW: &str = "cutter_governance.cut_change_set_affected_row";
pub const CUT_CHANGE_SET_CHECKED: &str = "cutter_governance.cut_change_set_checked";
pub const CUT_CHANGE_SET_ENACTED: &str = "cutter_governance.cut_change_set_enacted";
pub const MANIFEST_ENVELOPE: &str = "cutter_governance.manifest_envelope";
pub const APPROVAL_SIGNATURE: &str = "cutter_governance.approval_signature";
pub const REVIEW_DECISION: &str = "cutter_governance.review_decision";
pub const VERIFY_RESULT: &str = "cutter_governance.verify_result";
pub const DOCUMENT_LOCK: &str = "cutter_governance.document_lock";
pub const DOCUMENT_LOCK_LOG: &str = "cutter_governance.document_lock_log";
pub const BATCH: &str = "cutter_governance.batch";
pub const BATCH_ITEM: &str = "cutter_governance.batch_item";
pub const RUN: &str = "cutter_governance.run";
/// A live run's record (V17), its saved revisions, and its reports.
pub const RUN_STATE: &str = "cutter_governance.run_state";
pub const RUN_STATE_HISTORY: &str = "cutter_governance.run_state_history";
pub const RUN_REPORT: &str = "cutter_governance.run_report";
/// `cutter_governance.run_review`: the review page recorded for each gate of a run (V14).
pub const RUN_REVIEW: &str = "cutter_governance.run_review";
pub const KB_IDENTITY: &str = "cutter_governance.kb_identity";
pub const POLICY: &str = "cutter_governance.policy";
pub const APPROVER_KEY: &str = "cutter_governance.approver_key";
pub const APPROVER_KEY_LOG: &str = "cutter_governance.approver_key_log";
pub const KILL_SWITCH_LOG: &str = "cutter_governance.kill_switch_log";
/// `cutter_governance.leg_a_stage`: leg A's writes, copied in by the exec role (INSERT on its
/// write columns only) and taken by `fn_iu_change_staged` in the same transaction (V15).
pub const LEG_A_STAGE: &str = "cutter_governance.leg_a_stage";
/// The columns of [`LEG_A_STAGE`] the exec role may insert into, in the order leg A copies
/// them: every column but `created_xid`, which only its default fills.
pub const LEG_A_STAGE_COLUMNS: [&str; 13] = [
    "run_id",
    "pos",
    "op",
    "unit_key",
    "version_no",
    "parent_key",
    "ordinal",
    "unit_kind",
    "section_type",
    "title",
    "body",
    "body_sha256",
    "provision_status",
];

/// `cutter_governance.document_fingerprint`: each document's units at their newest version,
/// hashed (the other-documents check).
pub const DOCUMENT_FINGERPRINT: &str = "cutter_governance.document_fingerprint";
/// `cutter_governance.unit_change_history`: every enacted, unreverted change of a unit with
/// the interval it starts.
pub const UNIT_CHANGE_HISTORY: &str = "cutter_governance.unit_change_history";
/// `public.unit_in_force`: the units in force now, for the knowledge base's readers.
pub const UNIT_IN_FORCE: &str = "public.unit_in_force";

/// cutter's tables in `public` (besides the migration history).
pub const PUBLIC_TABLES: [&str; 4] = [
    INFORMATION_UNIT,
    UNIT_VERSION,
    IU_LIFECYCLE_LOG,
    UNIT_REMOVAL,
];

/// cutter's views in `public`.
pub const PUBLIC_VIEWS: [&str; 1] = [UNIT_IN_FORCE];

/// Every table of the knowledge base (the admin role owns them all).
pub const TABLES: [&str; 31] = [
    INFORMATION_UNIT,
    UNIT_VERSION,
    IU_LIFECYCLE_LOG,
    UNIT_REMOVAL,
    MIGRATION_HISTORY,
    SOURCE_REGISTRY,
    SOURCE_VERSION,
    KILL_SWITCH_ARMING,
    CUT_CHANGE_SET,
    CUT_CHANGE_SET_AFFECTED_ROW,
    CUT_CHANGE_SET_CHECKED,
    CUT_CHANGE_SET_ENACTED,
    MANIFEST_ENVELOPE,
    APPROVAL_SIGNATURE,
    REVIEW_DECISION,
    VERIFY_RESULT,
    DOCUMENT_LOCK,
    DOCUMENT_LOCK_LOG,
    BATCH,
    BATCH_ITEM,
    RUN,
    RUN_REVIEW,
    KB_IDENTITY,
    POLICY,
    APPROVER_KEY,
    APPROVER_KEY_LOG,
    KILL_SWITCH_LOG,
    RUN_STATE,
    RUN_STATE_HISTORY,
    RUN_REPORT,
    LEG_A_STAGE,
];

/// Every view of the knowledge base.
pub const VIEWS: [&str; 3] = [DOCUMENT_FINGERPRINT, UNIT_CHANGE_HISTORY, UNIT_IN_FORCE];

/// The tables a run writes, for the narrow pre-write backup.
pub const WRITTEN_TABLES: [&str; 13] = [
    INFORMATION_UNIT,
    UNIT_VERSION,
    IU_LIFECYCLE_LOG,
    UNIT_REMOVAL,
    CUT_CHANGE_SET,
    CUT_CHANGE_SET_ENACTED,
    CUT_CHANGE_SET_AFFECTED_ROW,
    MANIFEST_ENVELOPE,
    APPROVAL_SIGNATURE,
    REVIEW_DECISION,
    VERIFY_RESULT,
    RUN,
    RUN_REVIEW,
];

/// Every table a run leaves rows in: the tables it writes, the registry its document is in,
/// the arming rows of its kill-switch and their log, and its document lock's log. Counting
/// these shows what a run did.
pub const RUN_TABLES: [&str; 17] = [
    INFORMATION_UNIT,
    UNIT_VERSION,
    IU_LIFECYCLE_LOG,
    UNIT_REMOVAL,
    SOURCE_REGISTRY,
    KILL_SWITCH_ARMING,
    KILL_SWITCH_LOG,
    DOCUMENT_LOCK_LOG,
    RUN,
    RUN_REVIEW,
    CUT_CHANGE_SET,
    CUT_CHANGE_SET_AFFECTED_ROW,
    CUT_CHANGE_SET_ENACTED,
    MANIFEST_ENVELOPE,
    APPROVAL_SIGNATURE,
    REVIEW_DECISION,
    VERIFY_RESULT,
];

/// What the verify role may SELECT: every table but the migration history and leg A's stage
/// (rows in flight, never part of the knowledge base), and every view.
pub fn verify_relations() -> impl Iterator<Item = &'static str> {
    TABLES
        .into_iter()
        .filter(|t| *t != MIGRATION_HISTORY && *t != LEG_A_STAGE)
        .chain(VIEWS)
}

/// The relations in `public` that belong to cutter, unqualified (everything in
/// `cutter_governance` does).
pub fn public_relations() -> Vec<&'static str> {
    PUBLIC_TABLES
        .iter()
        .chain(PUBLIC_VIEWS.iter())
        .filter_map(|t| t.strip_prefix("public."))
        .chain([MIGRATION_TABLE])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_lists_name_only_known_relations_once() {
        assert_eq!(MIGRATION_HISTORY, format!("public.{MIGRATION_TABLE}"));
        let all: BTreeSet<&str> = TABLES.into_iter().chain(VIEWS).collect();
        assert_eq!(
            all.len(),
            TABLES.len() + VIEWS.len(),
            "a name is listed twice"
        );
        for list in [
            &WRITTEN_TABLES[..],
            &RUN_TABLES[..],
            &PUBLIC_TABLES[..],
            &PUBLIC_VIEWS[..],
        ] {
            let set: BTreeSet<&str> = list.iter().copied().collect();
            assert_eq!(set.len(), list.len(), "{list:?} lists a name twice");
            assert!(set.is_subset(&all), "{list:?}");
        }
        assert_eq!(verify_relations().count(), 32);
        assert_eq!(
            public_relations(),
            vec![
                "information_unit",
                "unit_version",
                "iu_lifecycle_log",
                "unit_removal",
                "unit_in_force",
                "refinery_schema_history"
            ]
        );
    }
}
