//! The eleven phases of a run, in order, and the two approval gates between them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One step of a run. The order of the variants is the order of execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    SourcePin,
    Mark,
    Cutplan,
    PreWriteBackup,
    GrantProbe,
    CutLegA,
    StructuralVerify,
    LegBRecord,
    WriteVerify,
    LifecycleEnact,
    CloseoutReport,
}

impl Phase {
    /// All phases in execution order.
    pub const ALL: [Phase; 11] = [
        Phase::SourcePin,
        Phase::Mark,
        Phase::Cutplan,
        Phase::PreWriteBackup,
        Phase::GrantProbe,
        Phase::CutLegA,
        Phase::StructuralVerify,
        Phase::LegBRecord,
        Phase::WriteVerify,
        Phase::LifecycleEnact,
        Phase::CloseoutReport,
    ];

    /// The seeds' name of the phase, as used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Phase::SourcePin => "source_pin",
            Phase::Mark => "mark",
            Phase::Cutplan => "cutplan",
            Phase::PreWriteBackup => "pre_write_backup",
            Phase::GrantProbe => "grant_probe",
            Phase::CutLegA => "cut_leg_a",
            Phase::StructuralVerify => "structural_verify",
            Phase::LegBRecord => "leg_b_record",
            Phase::WriteVerify => "write_verify",
            Phase::LifecycleEnact => "lifecycle_enact",
            Phase::CloseoutReport => "closeout_report",
        }
    }

    /// 1-based position of the phase in the run.
    pub fn number(self) -> usize {
        Phase::ALL
            .iter()
            .position(|p| *p == self)
            .map_or(0, |i| i + 1)
    }

    /// Whether the phase changes rows in the execution target (and so needs the kill-switch
    /// armed in live mode). Verifications write their result rows, so they count.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Phase::CutLegA
                | Phase::StructuralVerify
                | Phase::LegBRecord
                | Phase::WriteVerify
                | Phase::LifecycleEnact
        )
    }

    /// The gate a run must pass *before* this phase, if any.
    pub fn gate_before(self) -> Option<Gate> {
        match self {
            Phase::CutLegA => Some(Gate::Sg1),
            Phase::LifecycleEnact => Some(Gate::Sg2),
            _ => None,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An approval gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Gate {
    /// Cut authorization: allows phases 6–9 (drafts are written).
    #[serde(rename = "SG_1")]
    Sg1,
    /// Lifecycle authorization: allows phases 10–11 (drafts are enacted).
    #[serde(rename = "SG_2")]
    Sg2,
    /// Compensation authorization: allows `void` or `revert` to retire units that were
    /// enacted. Not a pause of the run: it is asked for when compensation needs it.
    #[serde(rename = "SG_C")]
    Compensation,
}

impl Gate {
    pub fn name(self) -> &'static str {
        match self {
            Gate::Sg1 => "SG_1",
            Gate::Sg2 => "SG_2",
            Gate::Compensation => "SG_C",
        }
    }

    /// Parses `SG_1` / `SG_2` / `SG_C` (also accepts the seeds' `SG_1_cut_authz` style
    /// suffixes).
    pub fn parse(text: &str) -> Option<Gate> {
        let t = text.trim().to_ascii_uppercase();
        if t == "SG_1" || t.starts_with("SG_1_") {
            Some(Gate::Sg1)
        } else if t == "SG_2" || t.starts_with("SG_2_") {
            Some(Gate::Sg2)
        } else if t == "SG_C" || t.starts_with("SG_C_") {
            Some(Gate::Compensation)
        } else {
            None
        }
    }

    /// The first phase the gate lets through (none for compensation, which is not a phase).
    pub fn opens(self) -> Option<Phase> {
        match self {
            Gate::Sg1 => Some(Phase::CutLegA),
            Gate::Sg2 => Some(Phase::LifecycleEnact),
            Gate::Compensation => None,
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_numbered_in_order() {
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(p.number(), i + 1);
        }
        assert!(Phase::SourcePin < Phase::CloseoutReport);
    }

    #[test]
    fn gates_sit_before_leg_a_and_enact() {
        let gated: Vec<_> = Phase::ALL
            .iter()
            .filter_map(|p| p.gate_before().map(|g| (g, *p)))
            .collect();
        assert_eq!(
            gated,
            [
                (Gate::Sg1, Phase::CutLegA),
                (Gate::Sg2, Phase::LifecycleEnact)
            ]
        );
        assert_eq!(Gate::parse("sg_1_cut_authz"), Some(Gate::Sg1));
        assert_eq!(Gate::parse("SG_3"), None);
    }
}
