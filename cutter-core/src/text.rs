//! Text made safe to show: control characters in values that came from a document, a file,
//! an approval or the database are escaped before they reach a terminal or a report, so an
//! ESC sequence cannot repaint a screen and a newline cannot forge a line of a report.

use std::borrow::Cow;

/// `s` with every control character (C0 including tab and newline, DEL, C1) and every
/// [hidden format character](is_hidden_format) written as a `\u{..}` escape (`\n`, `\t` and
/// `\r` as themselves); `s` itself when it has none.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// As [`escape_controls`], but newlines are kept: for multi-line text such as a message of
/// several lines.
pub fn escape_controls_keep_newlines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Whether `c` is an invisible character that reorders or hides the text around it: the
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069: "Trojan
/// Source"), the zero-width space, the word joiner and the zero-width no-break space (BOM).
/// Shown escaped like a control character, so a reviewer reads the text as it is stored.
/// (Zero-width joiners and non-joiners are left alone: scripts such as Persian need them.)
pub fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}' | '\u{2060}' | '\u{FEFF}'
    )
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char =
        |c: char| (c.is_control() && !(keep_newlines && c == '\n')) || is_hidden_format(c);
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_hidden_format(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// One piece of a word-level diff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", content = "text", rename_all = "snake_case")]
pub enum WordChange {
    Same(String),
    Removed(String),
    Added(String),
}

/// Above this many word pairs the middle of a diff is shown as one removal and one addition:
/// the table of a longest common subsequence grows with the product of the two lengths.
const WORD_DIFF_CELLS: usize = 4_000_000;

/// The word-level changes from `old` to `new`: common words kept, the rest removed or added.
/// Words are split on whitespace and kept with the whitespace that follows them, so joining
/// the `Same` and `Added` pieces gives `new` back exactly (and `Same` + `Removed` gives
/// `old`).
pub fn word_diff(old: &str, new: &str) -> Vec<WordChange> {
    let a = words(old);
    let b = words(new);
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut out: Vec<WordChange> = Vec::new();
    let mut push = |change: WordChange| match (out.last_mut(), change) {
        (Some(WordChange::Same(t)), WordChange::Same(s))
        | (Some(WordChange::Removed(t)), WordChange::Removed(s))
        | (Some(WordChange::Added(t)), WordChange::Added(s)) => t.push_str(&s),
        (_, change) => out.push(change),
    };
    for w in &a[..prefix] {
        push(WordChange::Same((*w).to_string()));
    }
    if ma.len().saturating_mul(mb.len()) > WORD_DIFF_CELLS {
        push(WordChange::Removed(ma.concat()));
        push(WordChange::Added(mb.concat()));
    } else {
        // lcs[i][j]: the longest common subsequence of ma[i..] and mb[j..].
        let (n, m) = (ma.len(), mb.len());
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * (m + 1) + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && ma[i] == mb[j] {
                push(WordChange::Same(ma[i].to_string()));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
                // Removals first, so a replaced word reads "[-old-]{+new+}".
                push(WordChange::Removed(ma[i].to_string()));
                i += 1;
            } else {
                push(WordChange::Added(mb[j].to_string()));
                j += 1;
            }
        }
    }
    for w in &a[a.len() - suffix..] {
        push(WordChange::Same((*w).to_string()));
    }
    out
}

/// `s` cut after each run of whitespace: every piece is a word with the spaces that follow it.
fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            out.push(&s[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// A word diff written for a terminal or Markdown: removed words as `[-…-]`, added as `{+…+}`.
pub fn render_word_diff(changes: &[WordChange]) -> String {
    let mut out = String::new();
    for c in changes {
        match c {
            WordChange::Same(t) => push_unmarked(&mut out, t),
            WordChange::Removed(t) => {
                out.push_str("[-");
                push_unmarked(&mut out, t.trim_end());
                out.push_str("-]");
                out.push_str(&t[t.trim_end().len()..]);
            }
            WordChange::Added(t) => {
                out.push_str("{+");
                push_unmarked(&mut out, t.trim_end());
                out.push_str("+}");
                out.push_str(&t[t.trim_end().len()..]);
            }
        }
    }
    out
}

/// `t` with every backslash doubled and a backslash put inside each of the four marker
/// sequences (`[-` `-]` `{+` `+}`), so text that contains a marker never reads as a change: a
/// body with `B+} must {+C` in it would otherwise show added words as unchanged.
fn push_unmarked(out: &mut String, t: &str) {
    if !t.contains(['\\', '[', ']', '{', '}']) {
        out.push_str(t);
        return;
    }
    let escaped = t
        .replace('\\', "\\\\")
        .replace("[-", "[\\-")
        .replace("-]", "\\-]")
        .replace("{+", "{\\+")
        .replace("+}", "\\+}");
    out.push_str(&escaped);
}

#[cfg(test)]
mod tests {
    use super::{render_word_diff, WordChange};

    #[test]
    fn marker_sequences_in_the_text_never_read_as_changes() {
        let d = [
            WordChange::Same("A ".into()),
            WordChange::Added("B+} must forfeit everything {+C".into()),
            WordChange::Same(" and [-x-] \\ end".into()),
        ];
        assert_eq!(
            render_word_diff(&d),
            "A {+B\\+} must forfeit everything {\\+C+} and [\\-x\\-] \\\\ end"
        );
    }

    #[test]
    fn bidi_overrides_and_zero_width_spaces_are_shown_escaped() {
        assert_eq!(
            super::escape_controls("pay \u{202E}01.00\u{202C} and\u{200B}more"),
            "pay \\u{202e}01.00\\u{202c} and\\u{200b}more"
        );
        // A non-joiner is part of some scripts' spelling, and stays.
        assert_eq!(super::escape_controls("a\u{200C}b"), "a\u{200C}b");
    }

    use super::*;

    #[test]
    fn word_diff_keeps_both_texts_and_marks_the_change() {
        let old = "Anyone may join the club.";
        let new = "Anyone of age may join the club today.";
        let d = word_diff(old, new);
        let rebuild = |keep: fn(&WordChange) -> Option<&str>| -> String {
            d.iter().filter_map(keep).collect()
        };
        assert_eq!(
            rebuild(|c| match c {
                WordChange::Same(t) | WordChange::Added(t) => Some(t),
                WordChange::Removed(_) => None,
            }),
            new
        );
        assert_eq!(
            rebuild(|c| match c {
                WordChange::Same(t) | WordChange::Removed(t) => Some(t),
                WordChange::Added(_) => None,
            }),
            old
        );
        assert_eq!(
            render_word_diff(&d),
            "Anyone {+of age+} may join the [-club.-]{+club today.+}"
        );
        assert_eq!(
            word_diff("same", "same"),
            vec![WordChange::Same("same".into())]
        );
        assert!(word_diff("", "").is_empty());
    }

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(escape_controls("Điều 3 — ok"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_controls("x\ny\tz\u{0}"), "x\\ny\\tz\\u{0}");
        assert_eq!(escape_controls("c1\u{9b}"), "c1\\u{9b}");
        assert_eq!(escape_controls_keep_newlines("a\nb\u{7f}"), "a\nb\\u{7f}");
    }
}
