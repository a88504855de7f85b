//! Heading numbers: reading `14`, `XIV`, `b`, `đ`, `thứ hai`, `premier`, `34-1` or `XI bis`
//! into a value and a place in its level's sequence, and back.
//!
//! Numbering checks (Article 7 after Article 5, `11 ter` after `11 bis`) and stable keys
//! (`ch-2`, not `ch-II`; `title-11bis` however `XI BIS` is written) both need the value behind
//! a heading's number, whatever way the document writes it. A profile adds its own word
//! numerals and may reorder the Latin suffixes ([`Rules`]); the engine reads each heading's
//! number once, so none of this runs per line.

use std::sync::OnceLock;

/// How a number was written, so an expected number can be shown the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Arabic,
    Roman,
    Alpha,
    Words,
}

/// How one part of an inserted number's suffix was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `-1`, `-2` (`34-1`).
    Hyphen,
    /// A letter (`14a`, `14B`).
    Letter { upper: bool },
    /// A Latin multiplicative (`bis`, `TER`), with a space before it or not.
    Latin { spaced: bool, upper: bool },
}

/// One part of an inserted number's suffix: its rank among the insertions after the same
/// number (`bis`, `a` and `-1` are 1; `ter`, `b` and `-2` are 2) and how it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) rank: u32,
    pub(crate) form: Form,
}

/// At most this many suffix parts (`34-1-2b` has three); a longer suffix is no number.
pub(crate) const MAX_PARTS: usize = 3;

/// The value of a heading number as far as it can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Num {
    /// A plain number in sequence (`5`, `V`, `e`, `premier`).
    Value { value: u64, style: Style },
    /// An inserted number such as `14a`, `34-1` or `XI bis`: it comes after `base` and the
    /// insertions before it, and before `base + 1`.
    Suffixed {
        base: u64,
        style: Style,
        parts: Vec<Part>,
    },
    /// Something that cannot be read as a number; no numbering check is possible.
    Unknown,
}

/// Where a number stands in its level's sequence: `11` < `11 bis` < `11 ter` < `11 ter-1` <
/// `12`. Unused suffix ranks are 0, so a number sorts before its insertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Position {
    pub(crate) base: u64,
    pub(crate) ranks: [u32; MAX_PARTS],
}

impl Position {
    /// A plain number without suffix.
    pub(crate) fn plain(base: u64) -> Position {
        Position {
            base,
            ranks: [0; MAX_PARTS],
        }
    }

    /// How many suffix parts it has.
    fn depth(&self) -> usize {
        self.ranks.iter().take_while(|r| **r > 0).count()
    }
}

impl Num {
    /// Its place in the sequence, when it has one.
    pub(crate) fn position(&self) -> Option<Position> {
        match self {
            Num::Value { value, .. } => Some(Position::plain(*value)),
            Num::Suffixed { base, parts, .. } => {
                let mut position = Position::plain(*base);
                for (slot, part) in position.ranks.iter_mut().zip(parts) {
                    *slot = part.rank;
                }
                Some(position)
            }
            Num::Unknown => None,
        }
    }
}

/// The Latin multiplicatives used for inserted articles, in order; entries of one group are
/// spellings of the same rank, the first being the one keys use.
pub const DEFAULT_SUFFIXES: &[&[&str]] = &[
    &["bis"],
    &["ter"],
    &["quater"],
    &["quinquies"],
    &["sexies"],
    &["septies"],
    &["octies"],
    &["nonies", "novies"],
    &["decies"],
    &["undecies"],
    &["duodecies"],
    &["terdecies"],
    &["quaterdecies"],
    &["quindecies", "quinquiesdecies"],
    &["sexdecies", "sexiesdecies"],
    &["septdecies", "septiesdecies"],
    &["octodecies", "octiesdecies"],
    &["novodecies", "noniesdecies"],
    &["vicies"],
];

/// A profile's rules for reading numbers: its word numerals (`premier = 1`) and the order of
/// its Latin suffixes.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Lower-case words, inner whitespace collapsed to one space, sorted, with their values.
    numerals: Vec<(String, u64)>,
    /// Lower-case suffix spellings, sorted, with their rank (1 for the first group).
    suffixes: Vec<(String, u32)>,
    /// The spelling keys use for each rank, in rank order.
    suffix_names: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        let groups: Vec<Vec<String>> = DEFAULT_SUFFIXES
            .iter()
            .map(|g| g.iter().map(|s| s.to_string()).collect())
            .collect();
        // The default list is well formed (`the_default_rules_build` holds it to that).
        Rules::new(Vec::new(), groups).unwrap_or(Rules {
            numerals: Vec::new(),
            suffixes: Vec::new(),
            suffix_names: Vec::new(),
        })
    }
}

/// The rules of a profile that sets none, built once.
pub(crate) fn default_rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(Rules::default)
}

/// Lower case with runs of whitespace made one space, for comparing words whatever their case
/// and spacing.
fn fold(word: &str) -> String {
    word.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Rules {
    /// Builds the rules from a profile's `numerals` (word → value) and `suffixes` (groups of
    /// spellings, in order). Errors read after "failed to".
    pub(crate) fn new(
        numerals: Vec<(String, u64)>,
        suffixes: Vec<Vec<String>>,
    ) -> Result<Rules, String> {
        let mut words: Vec<(String, u64)> = Vec::with_capacity(numerals.len());
        for (word, value) in numerals {
            let folded = fold(&word);
            if folded.is_empty() {
                return Err("read `[numerals]`: a numeral is blank".to_string());
            }
            if value == 0 {
                return Err(format!(
                    "read `[numerals]`: `{word}` is 0; numbers start at 1"
                ));
            }
            if let Some((_, other)) = words.iter().find(|(w, _)| *w == folded) {
                if *other != value {
                    return Err(format!(
                        "read `[numerals]`: `{folded}` is given both {other} and {value} (case does not matter)"
                    ));
                }
                continue;
            }
            words.push((folded, value));
        }
        words.sort();
        let mut spellings: Vec<(String, u32)> = Vec::new();
        let mut names = Vec::with_capacity(suffixes.len());
        for (index, group) in suffixes.iter().enumerate() {
            let rank =
                u32::try_from(index + 1).map_err(|_| "read `suffixes`: too many".to_string())?;
            let Some(first) = group.first() else {
                return Err(format!("read `suffixes`: entry {rank} is an empty list"));
            };
            for spelling in group {
                let folded = spelling.to_ascii_lowercase();
                if folded.is_empty() || !folded.bytes().all(|b| b.is_ascii_lowercase()) {
                    return Err(format!(
                        "read `suffixes`: `{spelling}` is not a word of ASCII letters"
                    ));
                }
                if spellings.iter().any(|(s, _)| *s == folded) {
                    return Err(format!("read `suffixes`: `{folded}` is listed twice"));
                }
                spellings.push((folded, rank));
            }
            names.push(first.to_ascii_lowercase());
        }
        spellings.sort();
        Ok(Rules {
            numerals: words,
            suffixes: spellings,
            suffix_names: names,
        })
    }

    /// The value of a word numeral, whatever its case and spacing.
    fn numeral(&self, raw: &str) -> Option<u64> {
        if self.numerals.is_empty() {
            return None;
        }
        let folded = fold(raw);
        self.numerals
            .binary_search_by(|(w, _)| w.as_str().cmp(folded.as_str()))
            .ok()
            .and_then(|i| self.numerals.get(i))
            .map(|(_, v)| *v)
    }

    /// The rank of a Latin suffix, whatever its case.
    fn latin(&self, word: &str) -> Option<u32> {
        let folded = word.to_ascii_lowercase();
        self.suffixes
            .binary_search_by(|(w, _)| w.as_str().cmp(folded.as_str()))
            .ok()
            .and_then(|i| self.suffixes.get(i))
            .map(|(_, r)| *r)
    }

    /// The spelling of a Latin suffix's rank that keys use.
    fn latin_name(&self, rank: u32) -> Option<&str> {
        let index = usize::try_from(rank).ok()?.checked_sub(1)?;
        self.suffix_names.get(index).map(String::as_str)
    }

    /// Reads `raw` (already trimmed) using `alphabet` for lettered points.
    ///
    /// In order: a word numeral of the profile (the whole number, any case), arabic digits
    /// with an optional suffix, one letter of `alphabet`, a Roman numeral in capitals, a
    /// Vietnamese ordinal (`thứ hai`), then a Roman numeral or a word numeral followed by a
    /// suffix (`XI bis`, `premier bis`).
    pub(crate) fn read(&self, raw: &str, alphabet: &[char]) -> Num {
        if raw.is_empty() {
            return Num::Unknown;
        }
        if let Some(value) = self.numeral(raw) {
            return Num::Value {
                value,
                style: Style::Words,
            };
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
            return self.suffixed(value, Style::Arabic, tail);
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
        let roman = raw
            .bytes()
            .take_while(|b| roman_digit(char::from(*b)).is_some())
            .count();
        if let Some((head, tail)) = (roman > 0).then(|| raw.split_at(roman)) {
            if let Some(value) = roman_value(head) {
                let num = self.suffixed(value, Style::Roman, tail);
                if num != Num::Unknown {
                    return num;
                }
            }
        }
        if let Some(at) = raw.rfind(|c: char| c.is_whitespace() || c == '-') {
            let (head, tail) = raw.split_at(at);
            let head = head.trim_end();
            if let Some(value) = self.numeral(head).or_else(|| vietnamese_ordinal(head)) {
                return self.suffixed(value, Style::Words, tail);
            }
        }
        Num::Unknown
    }

    /// `base` with the suffix `tail`, or [`Num::Unknown`] when `tail` is no suffix.
    fn suffixed(&self, base: u64, style: Style, tail: &str) -> Num {
        match self.suffix_parts(tail, style == Style::Arabic) {
            Some(parts) => Num::Suffixed { base, style, parts },
            None => Num::Unknown,
        }
    }

    /// The parts of a suffix: Latin words of the profile (`bis`, ` TER`, `-bis`), `-digits`
    /// parts (`-1`), and, after arabic digits (`letters`), up to three letters written
    /// straight after the number or a hyphen (`a`, `-1a`, `B`). A Latin word or a run of
    /// letters must end where the suffix or the next part begins, so `bisque` is no `bis`.
    fn suffix_parts(&self, tail: &str, letters: bool) -> Option<Vec<Part>> {
        let mut parts: Vec<Part> = Vec::new();
        let mut rest = tail;
        while !rest.is_empty() {
            let (hyphen, spaced, body) = if let Some(body) = rest.strip_prefix('-') {
                (true, false, body)
            } else {
                let body = rest.trim_start();
                (false, body.len() < rest.len(), body)
            };
            let digits = body.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                if !hyphen {
                    return None;
                }
                let (head, after) = body.split_at(digits);
                let rank = head.parse::<u32>().ok().filter(|r| *r > 0)?;
                parts.push(Part {
                    rank,
                    form: Form::Hyphen,
                });
                rest = after;
            } else {
                let len = body.bytes().take_while(u8::is_ascii_alphabetic).count();
                let (word, after) = body.split_at(len);
                if word.is_empty() {
                    return None;
                }
                let upper = word.bytes().all(|b| b.is_ascii_uppercase());
                if let Some(rank) = self.latin(word) {
                    parts.push(Part {
                        rank,
                        form: Form::Latin { spaced, upper },
                    });
                } else if letters && !spaced && word.len() <= 3 {
                    for b in word.bytes() {
                        parts.push(Part {
                            rank: u32::from(b.to_ascii_lowercase() - b'a') + 1,
                            form: Form::Letter {
                                upper: b.is_ascii_uppercase(),
                            },
                        });
                    }
                } else {
                    return None;
                }
                rest = after;
            }
            if parts.len() > MAX_PARTS {
                return None;
            }
        }
        (!parts.is_empty()).then_some(parts)
    }

    /// Appends the key segment for a number: decimal for counted styles, the letter for points,
    /// the suffix in one ASCII spelling however it was written (`XI BIS`, `11 bis`, `11-bis`
    /// → `11bis`; `34-1` → `34-1`; `14A` → `14a`), and a sanitised ASCII form of anything
    /// else, so keys stay plain ASCII paths. It appends to a buffer because it runs once per
    /// unit.
    pub(crate) fn push_key_segment(&self, out: &mut String, raw: &str, num: &Num) {
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
            Num::Suffixed { base, parts, .. } => {
                let _ = write!(out, "{base}");
                for part in parts {
                    match part.form {
                        Form::Hyphen => {
                            let _ = write!(out, "-{}", part.rank);
                        }
                        Form::Letter { .. } => out.push(letter(part.rank, false)),
                        Form::Latin { .. } => match self.latin_name(part.rank) {
                            Some(name) => out.push_str(name),
                            None => {
                                let _ = write!(out, "-{}", part.rank);
                            }
                        },
                    }
                }
            }
            Num::Unknown => push_ascii_slug(out, raw),
        }
    }

    /// Writes `position` the way `like` was written (its base's style, its suffix's forms),
    /// for "expected Titre XI ter" messages.
    pub(crate) fn render_like(&self, position: Position, like: &Num, alphabet: &[char]) -> String {
        let (style, forms): (Style, &[Part]) = match like {
            Num::Value { style, .. } => (*style, &[]),
            Num::Suffixed { style, parts, .. } => (*style, parts),
            Num::Unknown => (Style::Arabic, &[]),
        };
        let mut out = render(position.base, style, alphabet);
        for (i, rank) in position.ranks.iter().take(position.depth()).enumerate() {
            let form = forms.get(i).map_or(Form::Hyphen, |p| p.form);
            match form {
                Form::Hyphen => {
                    out.push('-');
                    out.push_str(&rank.to_string());
                }
                Form::Letter { upper } => out.push(letter(*rank, upper)),
                Form::Latin { spaced, upper } => {
                    let name = self.latin_name(*rank).unwrap_or("?");
                    if spaced {
                        out.push(' ');
                    }
                    if upper {
                        out.push_str(&name.to_ascii_uppercase());
                    } else {
                        out.push_str(name);
                    }
                }
            }
        }
        out
    }
}

/// The letter of rank `rank` (1 is `a`), `?` past `z`.
fn letter(rank: u32, upper: bool) -> char {
    let c = u8::try_from(rank)
        .ok()
        .filter(|r| (1..=26).contains(r))
        .map_or('?', |r| char::from(b'a' + r - 1));
    if upper {
        c.to_ascii_uppercase()
    } else {
        c
    }
}

/// Reads `raw` with the rules of a profile that sets none (built-in Roman numerals, Latin
/// suffixes and Vietnamese ordinals only).
pub(crate) fn parse(raw: &str, alphabet: &[char]) -> Num {
    default_rules().read(raw, alphabet)
}

/// Which jumps in a level's numbering are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Gaps {
    /// None: each number follows the one before (`gaps` not set).
    #[default]
    None,
    /// Any jump forward (`gaps = "allow"`); going back or repeating is still a problem.
    Allow,
    /// Only these jumps, each from a number (or an insertion after it) straight to another.
    Listed(Vec<(Position, Position)>),
}

/// Whether `found` may come straight after `previous` with no gap: the next number (`12` after
/// `11` or `11 ter`), or the next insertion (`11 bis` after `11`, `11 ter` after `11 bis`,
/// `34-1-1` after `34-1`, `34-2` after `34-1-1`).
pub(crate) fn follows(previous: Position, found: Position) -> bool {
    let depth = found.depth();
    if depth == 0 {
        return previous.base.checked_add(1) == Some(found.base);
    }
    if found.base != previous.base {
        return false;
    }
    let (Some(shared), Some(last)) = (found.ranks.get(..depth - 1), found.ranks.get(depth - 1))
    else {
        return false;
    };
    previous.ranks.get(..depth - 1) == Some(shared)
        && previous.ranks.get(depth - 1).and_then(|r| r.checked_add(1)) == Some(*last)
}

/// The position expected where `found` came after `previous` (none: the start), when `found`
/// may not come there under `gaps`; `None` when it may.
pub(crate) fn misplaced(
    previous: Option<Position>,
    found: Position,
    gaps: &Gaps,
) -> Option<Position> {
    let previous = previous.unwrap_or_default();
    let allowed = follows(previous, found)
        || match gaps {
            Gaps::None => false,
            Gaps::Allow => found > previous,
            Gaps::Listed(list) => list
                .iter()
                .any(|(from, to)| *to == found && previous.base == from.base && previous >= *from),
        };
    if allowed {
        return None;
    }
    let depth = found.depth();
    if depth == 0 || found.base != previous.base {
        return Some(Position::plain(previous.base.saturating_add(1)));
    }
    // The next insertion at the depth of the one found.
    let mut expected = previous;
    for (i, rank) in expected.ranks.iter_mut().enumerate() {
        if i + 1 == depth {
            *rank = rank.saturating_add(1);
        } else if i >= depth {
            *rank = 0;
        }
    }
    Some(expected)
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

    const VN: &str = "abcdđeghiklmnopqrstuvxy";

    fn check(raw: &str, expected: Num) {
        let alphabet: Vec<char> = VN.chars().collect();
        assert_eq!(parse(raw, &alphabet), expected, "{raw}");
    }

    fn french() -> Rules {
        let numerals = [
            ("premier", 1),
            ("Ier", 1),
            ("1er", 1),
            ("first", 1),
            ("erste", 1),
            ("deuxième", 2),
            ("vingt et un", 21),
        ];
        Rules::new(
            numerals.iter().map(|(w, v)| (w.to_string(), *v)).collect(),
            DEFAULT_SUFFIXES
                .iter()
                .map(|g| g.iter().map(|s| s.to_string()).collect())
                .collect(),
        )
        .unwrap()
    }

    fn latin(rank: u32, spaced: bool, upper: bool) -> Part {
        Part {
            rank,
            form: Form::Latin { spaced, upper },
        }
    }

    fn hyphen(rank: u32) -> Part {
        Part {
            rank,
            form: Form::Hyphen,
        }
    }

    fn letter_part(rank: u32) -> Part {
        Part {
            rank,
            form: Form::Letter { upper: false },
        }
    }

    fn suffixed(base: u64, style: Style, parts: &[Part]) -> Num {
        Num::Suffixed {
            base,
            style,
            parts: parts.to_vec(),
        }
    }

    /// The key segment of `raw` under `rules`.
    fn key(rules: &Rules, raw: &str) -> String {
        let mut out = String::new();
        rules.push_key_segment(&mut out, raw, &rules.read(raw, &[]));
        out
    }

    fn pos(rules: &Rules, raw: &str) -> Position {
        rules
            .read(raw, &[])
            .position()
            .unwrap_or_else(|| panic!("{raw} has no position"))
    }

    #[test]
    fn the_default_rules_build() {
        let rules = Rules::default();
        assert_eq!(rules.suffix_names.len(), DEFAULT_SUFFIXES.len());
        assert_eq!(rules.latin("NOVIES"), Some(8));
        assert_eq!(rules.latin_name(8), Some("nonies"));
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
        check("14a", suffixed(14, Arabic, &[letter_part(1)]));
        check("34-1", suffixed(34, Arabic, &[hyphen(1)]));
        check(
            "34-1-2b",
            suffixed(34, Arabic, &[hyphen(1), hyphen(2), letter_part(2)]),
        );
        check("34-", Num::Unknown);
        check("34--1", Num::Unknown);
        check("34-0", Num::Unknown);
        check("34-1abcd", Num::Unknown);
        check("99999999999999999999999", Num::Unknown);
        check("", Num::Unknown);
    }

    #[test]
    fn latin_suffixes_with_or_without_a_space_or_hyphen() {
        use Style::*;
        check("12bis", suffixed(12, Arabic, &[latin(1, false, false)]));
        check("12 bis", suffixed(12, Arabic, &[latin(1, true, false)]));
        check("12-bis", suffixed(12, Arabic, &[latin(1, false, false)]));
        check("12 TER", suffixed(12, Arabic, &[latin(2, true, true)]));
        check("XI BIS", suffixed(11, Roman, &[latin(1, true, true)]));
        check("XI bis", suffixed(11, Roman, &[latin(1, true, false)]));
        check("XIbis", suffixed(11, Roman, &[latin(1, false, false)]));
        check("XI-1", suffixed(11, Roman, &[hyphen(1)]));
        check(
            "88 quater-1",
            suffixed(88, Arabic, &[latin(3, true, false), hyphen(1)]),
        );
        check(
            "71 quinquies",
            suffixed(71, Arabic, &[latin(4, true, false)]),
        );
        check("5 novies", suffixed(5, Arabic, &[latin(8, true, false)]));
        check(
            "12A",
            suffixed(
                12,
                Arabic,
                &[Part {
                    rank: 1,
                    form: Form::Letter { upper: true },
                }],
            ),
        );
    }

    #[test]
    fn near_misses_are_no_suffix() {
        for raw in [
            "12bisque",
            "12 bisque",
            "XI bisque",
            "XI BISQUE",
            "12 a",
            "12 abc",
            "XIa",
            "XI b",
            "XIer",
            "12 1",
            "12-",
            "12 bis-",
            "12terx",
            "12 bis bis bis bis",
            "CIVIL",
            "12 bis.",
        ] {
            check(raw, Num::Unknown);
        }
    }

    #[test]
    fn word_numerals_come_from_the_profile_whatever_their_case() {
        let fr = french();
        let words = |value| Num::Value {
            value,
            style: Style::Words,
        };
        for raw in [
            "premier", "PREMIER", "Premier", "Ier", "IER", "1er", "first", "Erste",
        ] {
            assert_eq!(fr.read(raw, &[]), words(1), "{raw}");
        }
        assert_eq!(fr.read("DEUXIÈME", &[]), words(2));
        assert_eq!(fr.read("vingt  et\tun", &[]), words(21));
        assert_eq!(
            fr.read("premier bis", &[]),
            suffixed(1, Style::Words, &[latin(1, true, false)])
        );
        // Only the whole number is a numeral: `Ier` inside a longer word is none.
        for raw in [
            "Iers",
            "premiers",
            "Ierbis",
            "xIer",
            "premier-né",
            "vingt et",
        ] {
            assert_eq!(fr.read(raw, &[]), Num::Unknown, "{raw}");
        }
        // Without the table, `premier` is no number and `Ier` no Roman numeral.
        check("premier", Num::Unknown);
        check("Ier", Num::Unknown);
        // The Vietnamese ordinals stay built in, with or without a table.
        assert_eq!(fr.read("thứ hai", &[]), words(2));
    }

    #[test]
    fn rules_reject_ambiguous_tables() {
        let err = |numerals: &[(&str, u64)], suffixes: &[&[&str]]| {
            Rules::new(
                numerals.iter().map(|(w, v)| (w.to_string(), *v)).collect(),
                suffixes
                    .iter()
                    .map(|g| g.iter().map(|s| s.to_string()).collect())
                    .collect(),
            )
            .err()
            .unwrap_or_default()
        };
        assert!(err(&[("premier", 1), ("PREMIER", 2)], &[]).contains("given both 1 and 2"));
        assert_eq!(err(&[("premier", 1), ("PREMIER", 1)], &[]), "");
        assert!(err(&[("zéro", 0)], &[]).contains("numbers start at 1"));
        assert!(err(&[(" ", 1)], &[]).contains("blank"));
        assert!(err(&[], &[&["bis"], &["BIS"]]).contains("listed twice"));
        assert!(err(&[], &[&["bïs"]]).contains("ASCII letters"));
        assert!(err(&[], &[&[]]).contains("empty list"));
    }

    #[test]
    fn keys_are_ascii_and_the_same_however_the_suffix_is_written() {
        let fr = french();
        for (raw, expected) in [
            ("XI BIS", "11bis"),
            ("XI bis", "11bis"),
            ("XI-bis", "11bis"),
            ("XIbis", "11bis"),
            ("11 bis", "11bis"),
            ("11bis", "11bis"),
            ("11 Ter", "11ter"),
            ("5 novies", "5nonies"),
            ("34-1", "34-1"),
            ("34-1-2b", "34-1-2b"),
            ("14A", "14a"),
            ("14a", "14a"),
            ("88 quater-1", "88quater-1"),
            ("PREMIER", "1"),
            ("Ier", "1"),
            ("premier bis", "1bis"),
            ("XIV", "14"),
            ("007", "7"),
            ("Préambule", "preambule"),
        ] {
            assert_eq!(key(&fr, raw), expected, "{raw}");
        }
    }

    #[test]
    fn insertions_sort_between_their_number_and_the_next() {
        let fr = french();
        let order = [
            "10",
            "11",
            "11 bis",
            "11 bis-1",
            "11 ter",
            "11 quater",
            "12",
            "12a",
            "12b",
            "13",
        ];
        for pair in order.windows(2) {
            let (a, b) = (pos(&fr, pair[0]), pos(&fr, pair[1]));
            assert!(a < b, "{} < {}", pair[0], pair[1]);
            assert!(follows(a, b), "{} then {}", pair[0], pair[1]);
        }
        let ok = |a: &str, b: &str| follows(pos(&fr, a), pos(&fr, b));
        assert!(ok("11 ter", "12"));
        assert!(ok("34-1-1", "34-2"));
        assert!(ok("34", "34-1"));
        assert!(!ok("11 ter", "11 bis"));
        assert!(!ok("11", "11 ter"));
        assert!(!ok("10", "11 bis"));
        assert!(!ok("11 bis", "11 bis"));
        assert!(!ok("11", "11"));
        assert!(!ok("11", "13"));
        assert!(!ok("34", "34-1-1"));
    }

    #[test]
    fn gaps_allow_jumps_forward_only_and_lists_only_their_own() {
        let fr = french();
        let p = |raw: &str| pos(&fr, raw);
        let none = Gaps::None;
        let allow = Gaps::Allow;
        let listed = Gaps::Listed(vec![(p("77"), p("87")), (p("11"), p("11 ter"))]);
        // No gaps allowed: what was expected is named.
        assert_eq!(misplaced(Some(p("77")), p("87"), &none), Some(p("78")));
        assert_eq!(misplaced(None, p("1"), &none), None);
        assert_eq!(misplaced(None, p("2"), &none), Some(p("1")));
        assert_eq!(
            misplaced(Some(p("11 bis")), p("11 quater"), &none),
            Some(p("11 ter"))
        );
        assert_eq!(
            misplaced(Some(p("11 ter")), p("11 bis"), &none),
            Some(p("11 quater"))
        );
        assert_eq!(misplaced(Some(p("10")), p("11 bis"), &none), Some(p("11")));
        // `allow`: any jump forward, never back or in place.
        assert_eq!(misplaced(Some(p("77")), p("87"), &allow), None);
        assert_eq!(misplaced(None, p("5"), &allow), None);
        assert_eq!(misplaced(Some(p("10")), p("11 bis"), &allow), None);
        assert_eq!(misplaced(Some(p("87")), p("77"), &allow), Some(p("88")));
        assert_eq!(misplaced(Some(p("5")), p("5"), &allow), Some(p("6")));
        assert_eq!(
            misplaced(Some(p("11 ter")), p("11 bis"), &allow),
            Some(p("11 quater"))
        );
        // A list: those jumps, from the number or an insertion after it, and no other.
        assert_eq!(misplaced(Some(p("77")), p("87"), &listed), None);
        assert_eq!(misplaced(Some(p("77 bis")), p("87"), &listed), None);
        assert_eq!(misplaced(Some(p("11")), p("11 ter"), &listed), None);
        assert_eq!(misplaced(Some(p("77")), p("86"), &listed), Some(p("78")));
        assert_eq!(misplaced(Some(p("76")), p("87"), &listed), Some(p("77")));
        assert_eq!(misplaced(Some(p("78")), p("80"), &listed), Some(p("79")));
        assert_eq!(misplaced(Some(p("87")), p("77"), &listed), Some(p("88")));
    }

    #[test]
    fn expected_numbers_are_written_like_the_one_found() {
        let fr = french();
        let render = |expected: &str, like: &str| {
            fr.render_like(pos(&fr, expected), &fr.read(like, &[]), &[])
        };
        assert_eq!(render("11 ter", "XI BIS"), "XI TER");
        assert_eq!(render("11 ter", "11bis"), "11ter");
        assert_eq!(render("34-2", "34-1"), "34-2");
        assert_eq!(render("12b", "12a"), "12b");
        assert_eq!(render("2", "premier"), "2");
        assert_eq!(render("12", "XI bis"), "XII");
    }

    #[test]
    fn overridden_suffix_order() {
        let rules = Rules::new(
            Vec::new(),
            vec![vec!["ter".into()], vec!["bis".into(), "bisx".into()]],
        )
        .unwrap();
        assert!(follows(pos(&rules, "3 ter"), pos(&rules, "3 bis")));
        assert!(!follows(pos(&rules, "3"), pos(&rules, "3 bis")));
        assert_eq!(key(&rules, "3 bisx"), "3bis");
        // `quater` is not in this list, so it is no suffix.
        assert_eq!(rules.read("3 quater", &[]), Num::Unknown);
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
