//! Heading numbers: reading `14`, `XIV`, `b`, `đ` or `thứ hai` into a value, and back.
//!
//! Numbering checks (Article 7 after Article 5) and stable keys (`ch-2`, not `ch-II`) both need
//! the value behind a heading's number, whatever way the document writes it.

/// How a number was written, so an expected number can be shown the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Arabic,
    Roman,
    Alpha,
    Words,
}

/// The value of a heading number as far as it can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Num {
    /// A plain number in sequence (`5`, `V`, `e`).
    Value { value: u64, style: Style },
    /// An inserted number such as `14a`: it follows `14` without advancing the sequence.
    Suffixed { base: u64, suffix: String },
    /// Something that cannot be read as a number; no numbering check is possible.
    Unknown,
}

/// Reads `raw` (already trimmed) using `alphabet` for lettered points.
pub(crate) fn parse(raw: &str, alphabet: &[char]) -> Num {
    if raw.is_empty() {
        return Num::Unknown;
    }
    let digits = raw.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let (head, tail) = raw.split_at(digits);
        let Ok(value) = head.parse::<u64>() else {
            return Num::Unknown;
        };
        if tail.is_empty() {
            return Num::Value {
                value,
                style: Style::Arabic,
            };
        }
        if (tail.chars().all(|c| c.is_ascii_lowercase()) && tail.len() <= 3) || hyphenated(tail) {
            return Num::Suffixed {
                base: value,
                suffix: tail.to_string(),
            };
        }
        return Num::Unknown;
    }
    let mut chars = raw.chars();
    if let (Some(only), None) = (chars.next(), chars.next()) {
        if let Some(pos) = alphabet.iter().position(|c| *c == only) {
            return Num::Value {
                value: pos as u64 + 1,
                style: Style::Alpha,
            };
        }
    }
    if let Some(value) = roman_value(raw) {
        return Num::Value {
            value,
            style: Style::Roman,
        };
    }
    if let Some(value) = vietnamese_ordinal(raw) {
        return Num::Value {
            value,
            style: Style::Words,
        };
    }
    Num::Unknown
}

/// Whether `tail` is one or more `-digits` parts and at most three lower-case letters
/// (`-1`, `-1-2`, `-1a`): the rest of an inserted number such as `34-1`.
fn hyphenated(tail: &str) -> bool {
    let letters = tail
        .bytes()
        .rev()
        .take_while(u8::is_ascii_lowercase)
        .count();
    if letters > 3 {
        return false;
    }
    let parts = tail.get(..tail.len() - letters).unwrap_or("");
    !parts.is_empty()
        && parts.starts_with('-')
        && parts
            .split('-')
            .skip(1)
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes `value` in `style`, for "expected Article 6" messages.
pub(crate) fn render(value: u64, style: Style, alphabet: &[char]) -> String {
    match style {
        Style::Arabic | Style::Words => value.to_string(),
        Style::Roman => to_roman(value).unwrap_or_else(|| value.to_string()),
        Style::Alpha => usize::try_from(value)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|i| alphabet.get(i))
            .map_or_else(|| value.to_string(), |c| c.to_string()),
    }
}

/// Appends the key segment for a number: decimal for counted styles, the letter for points,
/// and a sanitised ASCII form of anything else, so keys stay plain ASCII paths. It appends to
/// a buffer because it runs once per unit.
pub(crate) fn push_key_segment(out: &mut String, raw: &str, num: &Num) {
    use std::fmt::Write as _;
    match num {
        Num::Value {
            style: Style::Alpha,
            ..
        } => push_ascii_slug(out, raw),
        // Writing to a `String` cannot fail.
        Num::Value { value, .. } => {
            let _ = write!(out, "{value}");
        }
        Num::Suffixed { base, suffix } => {
            let _ = write!(out, "{base}{suffix}");
        }
        Num::Unknown => push_ascii_slug(out, raw),
    }
}

/// Lower-case ASCII letters and digits; `đ` becomes `dd` (its usual ASCII spelling) and other
/// letters lose their diacritics where that is a single base letter.
pub(crate) fn ascii_slug(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    push_ascii_slug(&mut out, raw);
    out
}

/// [`ascii_slug`] appended to `out`.
fn push_ascii_slug(out: &mut String, raw: &str) {
    let start = out.len();
    for c in raw.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'đ' => out.push_str("dd"),
            _ => {
                if let Some(base) = base_letter(c) {
                    out.push(base);
                } else if out.len() > start && !out.ends_with('-') {
                    out.push('-');
                }
            }
        }
    }
    while out.len() > start && out.ends_with('-') {
        out.pop();
    }
}

/// The ASCII base letter of a precomposed Latin letter, if it has one.
fn base_letter(c: char) -> Option<char> {
    use unicode_normalization::UnicodeNormalization;
    let base = std::iter::once(c).nfd().next()?;
    base.is_ascii_alphanumeric()
        .then(|| base.to_ascii_lowercase())
}

fn roman_digit(c: char) -> Option<u64> {
    Some(match c {
        'I' => 1,
        'V' => 5,
        'X' => 10,
        'L' => 50,
        'C' => 100,
        'D' => 500,
        'M' => 1000,
        _ => return None,
    })
}

/// Strict upper-case Roman numerals: the value must write back to the same text, so words
/// such as `DIM` or `MIX` written in capitals are not taken for numbers by accident of form.
fn roman_value(raw: &str) -> Option<u64> {
    if raw.len() > 15 {
        return None;
    }
    let mut total: u64 = 0;
    let mut prev: u64 = 0;
    for c in raw.chars().rev() {
        let v = roman_digit(c)?;
        if v < prev {
            total = total.checked_sub(v)?;
        } else {
            total += v;
            prev = v;
        }
    }
    (to_roman(total)? == raw).then_some(total)
}

fn to_roman(mut value: u64) -> Option<String> {
    if value == 0 || value >= 4000 {
        return None;
    }
    const TABLE: [(u64, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut out = String::new();
    for (v, s) in TABLE {
        while value >= v {
            out.push_str(s);
            value -= v;
        }
    }
    Some(out)
}

/// `thứ nhất` … `thứ mười` as Vietnamese laws number their Parts (`Phần thứ hai`).
fn vietnamese_ordinal(raw: &str) -> Option<u64> {
    let lower = raw.to_lowercase();
    let word = lower.strip_prefix("thứ")?.trim();
    Some(match word {
        "nhất" => 1,
        "hai" => 2,
        "ba" => 3,
        "tư" => 4,
        "năm" => 5,
        "sáu" => 6,
        "bảy" => 7,
        "tám" => 8,
        "chín" => 9,
        "mười" => 10,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Num) {
        let alphabet: Vec<char> = "abcdđeghiklmnopqrstuvxy".chars().collect();
        assert_eq!(parse(raw, &alphabet), expected, "{raw}");
    }

    #[test]
    fn reads_every_style() {
        use Style::*;
        check(
            "14",
            Num::Value {
                value: 14,
                style: Arabic,
            },
        );
        check(
            "XIV",
            Num::Value {
                value: 14,
                style: Roman,
            },
        );
        check("IIII", Num::Unknown);
        check(
            "đ",
            Num::Value {
                value: 5,
                style: Alpha,
            },
        );
        check(
            "e",
            Num::Value {
                value: 6,
                style: Alpha,
            },
        );
        check(
            "thứ hai",
            Num::Value {
                value: 2,
                style: Words,
            },
        );
        check(
            "THỨ NHẤT",
            Num::Value {
                value: 1,
                style: Words,
            },
        );
        check(
            "14a",
            Num::Suffixed {
                base: 14,
                suffix: "a".into(),
            },
        );
        check(
            "34-1",
            Num::Suffixed {
                base: 34,
                suffix: "-1".into(),
            },
        );
        check(
            "34-1-2b",
            Num::Suffixed {
                base: 34,
                suffix: "-1-2b".into(),
            },
        );
        check("34-", Num::Unknown);
        check("34--1", Num::Unknown);
        check("34-1abcd", Num::Unknown);
        check("99999999999999999999999", Num::Unknown);
        check("", Num::Unknown);
    }

    #[test]
    fn renders_and_slugs() {
        let alphabet: Vec<char> = "abcdđe".chars().collect();
        assert_eq!(render(5, Style::Alpha, &alphabet), "đ");
        assert_eq!(render(9, Style::Roman, &alphabet), "IX");
        assert_eq!(render(70, Style::Alpha, &alphabet), "70");
        assert_eq!(ascii_slug("Đ"), "dd");
        assert_eq!(ascii_slug("Ông bà!"), "ong-ba");
    }
}
