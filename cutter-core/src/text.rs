//! Text made safe to show: control characters in values that came from a document, a file,
//! an approval or the database are escaped before they reach a terminal or a report, so an
//! ESC sequence cannot repaint a screen and a newline cannot forge a line of a report.

use std::borrow::Cow;

/// `s` with every control character (C0 including tab and newline, DEL, C1) written as a
/// `\u{..}` escape (`\n`, `\t` and `\r` as themselves); `s` itself when it has none.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// As [`escape_controls`], but newlines are kept: for multi-line text such as a message of
/// several lines.
pub fn escape_controls_keep_newlines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !(keep_newlines && c == '\n');
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
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(escape_controls("Điều 3 — ok"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_controls("x\ny\tz\u{0}"), "x\\ny\\tz\\u{0}");
        assert_eq!(escape_controls("c1\u{9b}"), "c1\\u{9b}");
        assert_eq!(escape_controls_keep_newlines("a\nb\u{7f}"), "a\nb\\u{7f}");
    }
}
