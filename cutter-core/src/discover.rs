//! Discovery: turning source bytes into a cut plan, and the simple Markdown-heading discoverer.

use std::fmt;

use thiserror::Error;

use crate::plan::{CutPlan, Unit, UnitProblem};

/// Why a source could not be turned into a valid plan.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    #[error("read `{source_name}`: the file is empty")]
    Empty { source_name: String },
    #[error("read `{source_name}`: invalid UTF-8 at byte {offset} (line {line}); convert the file to UTF-8")]
    InvalidUtf8 {
        source_name: String,
        offset: usize,
        line: usize,
    },
    #[error("find structure in `{source_name}`: {detail}")]
    NoStructure { source_name: String, detail: String },
    #[error("cut `{source_name}` into valid units with grammar profile `{profile}`: {}", ProblemList(.problems))]
    InvalidUnits {
        source_name: String,
        /// The profile the source was cut with, so a failed plan always says which one.
        profile: String,
        problems: Vec<UnitProblem>,
    },
    #[error("use grammar profile `{profile}`: {detail}")]
    Profile { profile: String, detail: String },
}

impl DiscoveryError {
    /// The profile the source was cut with, when one was chosen or detected.
    pub fn profile(&self) -> Option<&str> {
        match self {
            DiscoveryError::InvalidUnits { profile, .. }
            | DiscoveryError::Profile { profile, .. } => Some(profile),
            _ => None,
        }
    }

    /// Every unit problem ([`DiscoveryError::InvalidUnits`]); empty for the other errors.
    pub fn problems(&self) -> &[UnitProblem] {
        match self {
            DiscoveryError::InvalidUnits { problems, .. } => problems,
            _ => &[],
        }
    }

    /// The message on one line, without the list of problems (which the human form prints
    /// one per line): what `--json` puts in `error` beside the full list.
    pub fn headline(&self) -> String {
        match self {
            DiscoveryError::InvalidUnits {
                source_name,
                profile,
                problems,
            } => format!(
                "cut `{source_name}` into valid units with grammar profile `{profile}`: {} problem(s)",
                problems.len()
            ),
            other => other.to_string(),
        }
    }

    /// Whether the bytes themselves are unusable (empty, not UTF-8): an input error, like a
    /// missing file, rather than a document that does not cut.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            DiscoveryError::Empty { .. } | DiscoveryError::InvalidUtf8 { .. }
        )
    }
}

/// How many problems (or warnings) a message lists before `… and N more`: a document with
/// 174,173 problems once printed them all on one 14.6 MB line.
pub const PROBLEMS_SHOWN: usize = 50;

/// Displays a list of problems as `n problem(s):` then one per line, indented, sorted by line:
/// the first [`PROBLEMS_SHOWN`], then `… and N more` saying where the full list is.
#[derive(Debug)]
pub struct ProblemList<'a>(pub &'a [UnitProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s)", self.0.len())?;
        let mut shown: Vec<&UnitProblem> = self.0.iter().collect();
        // Stable: problems of one line keep the order they were found in.
        shown.sort_by_key(|p| p.line);
        write_capped(f, shown.iter(), self.0.len())
    }
}

/// Writes `:` then each item on its own indented line, at most [`PROBLEMS_SHOWN`] of `total`,
/// then the `… and N more` line.
pub fn write_capped<T: fmt::Display>(
    f: &mut dyn fmt::Write,
    items: impl Iterator<Item = T>,
    total: usize,
) -> fmt::Result {
    for (i, item) in items.take(PROBLEMS_SHOWN).enumerate() {
        f.write_str(if i == 0 { ":\n  " } else { "\n  " })?;
        write!(f, "{item}")?;
    }
    if total > PROBLEMS_SHOWN {
        write!(
            f,
            "\n  … and {} more (the full list: `cutter plan FILE --json`, or `--problems-out FILE`)",
            total - PROBLEMS_SHOWN
        )?;
    }
    Ok(())
}

/// Turns source bytes into a plan. Pure: the bytes are read by a [`crate::ports::SourceReader`].
pub trait Discoverer: Send + Sync {
    /// The profile name recorded in the plan and in the run.
    fn name(&self) -> String;
    /// Parses `bytes` (named `source_name` in errors) into a validated plan.
    fn discover(&self, source_name: &str, bytes: &[u8]) -> Result<CutPlan, DiscoveryError>;
    /// [`Discoverer::discover`], with the regions it skipped on purpose (front matter, a
    /// table of contents …) and why, for the review page's coverage. A discoverer that skips
    /// nothing on purpose keeps this default; the review still lists every line no unit holds.
    fn discover_covered(
        &self,
        source_name: &str,
        bytes: &[u8],
    ) -> Result<Discovered, DiscoveryError> {
        Ok(Discovered {
            plan: self.discover(source_name, bytes)?,
            skipped: Vec::new(),
            warnings: Vec::new(),
        })
    }
}

/// A plan and the regions of the source its discoverer skipped on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub plan: CutPlan,
    pub skipped: Vec<crate::parser::SkippedRegion>,
    /// What the discoverer decided without stopping (a heading-like line read as text …).
    pub warnings: Vec<crate::parser::ParseWarning>,
}

/// Decodes UTF-8 or names the first bad byte and its line.
pub fn decode_utf8<'a>(source_name: &str, bytes: &'a [u8]) -> Result<&'a str, DiscoveryError> {
    if bytes.is_empty() {
        return Err(DiscoveryError::Empty {
            source_name: source_name.to_string(),
        });
    }
    // The SIMD validator answers only valid or not; std's finds where, on the error path.
    if let Ok(text) = simdutf8::basic::from_utf8(bytes) {
        return Ok(text);
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        DiscoveryError::InvalidUtf8 {
            source_name: source_name.to_string(),
            offset,
            line: bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1,
        }
    })
}

/// Cuts a Markdown file at its ATX headings (`#` … `######`): each heading opens a unit whose
/// body is the text up to the next heading of any level; deeper headings nest under shallower.
///
/// This is the minimal discoverer; grammar profiles for legal documents live in
/// [`crate::parser`].
#[derive(Debug, Clone, Default)]
pub struct MarkdownHeadings;

impl Discoverer for MarkdownHeadings {
    fn name(&self) -> String {
        "markdown-headings".to_string()
    }

    fn discover(&self, source_name: &str, bytes: &[u8]) -> Result<CutPlan, DiscoveryError> {
        let text = decode_utf8(source_name, bytes)?;
        struct Open {
            level: usize,
            key: String,
            children: u32,
        }
        struct Draft {
            key: String,
            parent: Option<String>,
            ordinal: u32,
            title: String,
            body: Vec<String>,
            start: u32,
            end: u32,
        }
        let mut stack: Vec<Open> = Vec::new();
        let mut top_children = 0u32;
        let mut drafts: Vec<Draft> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let line = raw.trim_end();
            let hashes = line.bytes().take_while(|b| *b == b'#').count();
            let is_heading = (1..=6).contains(&hashes)
                && line[hashes..].starts_with(' ')
                && !line[hashes..].trim().is_empty();
            if is_heading {
                while stack.last().is_some_and(|open| open.level >= hashes) {
                    stack.pop();
                }
                let ordinal = match stack.last_mut() {
                    Some(open) => {
                        open.children += 1;
                        open.children
                    }
                    None => {
                        top_children += 1;
                        top_children
                    }
                };
                let parent = stack.last().map(|open| open.key.clone());
                let segment = format!("h{hashes}-{ordinal}");
                let key = match &parent {
                    Some(p) => format!("{p}/{segment}"),
                    None => segment,
                };
                drafts.push(Draft {
                    key: key.clone(),
                    parent,
                    ordinal,
                    title: line[hashes..].trim().to_string(),
                    body: Vec::new(),
                    start: line_no,
                    end: line_no,
                });
                stack.push(Open {
                    level: hashes,
                    key,
                    children: 0,
                });
            } else if let Some(draft) = drafts.last_mut() {
                if !line.trim().is_empty() {
                    draft.end = line_no;
                }
                draft.body.push(line.to_string());
            } else if !line.trim().is_empty() {
                return Err(DiscoveryError::NoStructure {
                    source_name: source_name.to_string(),
                    detail: format!(
                        "line {line_no} has text before the first `#` heading; start the file with a heading"
                    ),
                });
            }
        }
        if drafts.is_empty() {
            return Err(DiscoveryError::NoStructure {
                source_name: source_name.to_string(),
                detail: "no Markdown heading (`# Title`) found".to_string(),
            });
        }
        let units = drafts
            .into_iter()
            .map(|d| {
                let body = d.body.join("\n").trim().to_string();
                Unit::new(
                    d.key,
                    d.parent,
                    d.ordinal,
                    "section",
                    "normative",
                    d.title,
                    body,
                    (d.start, d.end),
                )
            })
            .collect();
        let plan = CutPlan::new(self.name(), units);
        let problems = plan.validate();
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(DiscoveryError::InvalidUnits {
                source_name: source_name.to_string(),
                profile: self.name(),
                problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_headings_and_keeps_bodies() {
        let src = "# Charter\nPreamble text.\n## One\nFirst.\n## Two\nSecond.\n# Annex\nExtra.\n";
        let plan = MarkdownHeadings.discover("t.md", src.as_bytes()).unwrap();
        let keys: Vec<_> = plan.units.iter().map(|u| u.key()).collect();
        assert_eq!(keys, ["h1-1", "h1-1/h2-1", "h1-1/h2-2", "h1-2"]);
        assert_eq!(plan.units[1].parent(), Some("h1-1"));
        assert_eq!(plan.units[2].body(), "Second.");
        assert_eq!(plan.units[3].ordinal(), 2);
    }

    #[test]
    fn empty_heading_body_is_reported_with_its_line() {
        let err = MarkdownHeadings
            .discover("t.md", b"# A\n# B\ntext\n")
            .unwrap_err();
        match err {
            DiscoveryError::InvalidUnits { problems, .. } => {
                assert_eq!(problems.len(), 1);
                assert_eq!(problems[0].line, 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_and_non_utf8_name_the_file() {
        assert!(matches!(
            MarkdownHeadings.discover("e.md", b""),
            Err(DiscoveryError::Empty { .. })
        ));
        let err = MarkdownHeadings
            .discover("b.md", b"# ok\n\xff\n")
            .unwrap_err();
        assert!(err.to_string().contains("b.md"));
        assert!(matches!(err, DiscoveryError::InvalidUtf8 { line: 2, .. }));
    }

    #[test]
    fn many_problems_are_listed_one_per_line_by_line_and_capped() {
        let problems: Vec<UnitProblem> = (1..=120u32)
            .rev()
            .map(|line| UnitProblem {
                key: format!("k-{line}"),
                line,
                kind: crate::plan::ProblemKind::Other("broken".into()),
            })
            .collect();
        let err = DiscoveryError::InvalidUnits {
            source_name: "big.md".into(),
            profile: "en-legal".into(),
            problems,
        };
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "cut `big.md` into valid units with grammar profile `en-legal`: 120 problem(s):"
        );
        assert_eq!(lines[1], "  line 1: unit `k-1`: broken");
        assert_eq!(lines[50], "  line 50: unit `k-50`: broken");
        assert_eq!(
            lines[51],
            "  … and 70 more (the full list: `cutter plan FILE --json`, or `--problems-out FILE`)"
        );
        assert_eq!(lines.len(), 52);
        assert_eq!(err.profile(), Some("en-legal"));
        assert_eq!(err.problems().len(), 120);
        assert_eq!(
            err.headline(),
            "cut `big.md` into valid units with grammar profile `en-legal`: 120 problem(s)"
        );
    }

    #[test]
    fn text_before_first_heading_is_an_error() {
        let err = MarkdownHeadings
            .discover("p.md", b"intro\n# A\nx\n")
            .unwrap_err();
        assert!(err.to_string().contains("line 1"));
    }
}
