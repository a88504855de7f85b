//! HTML inside Markdown and whole HTML files: expands HTML block structure (lists, paragraphs,
//! headings, line breaks) into the plain numbered lines the grammar profiles already cut.
//!
//! # Decisions
//!
//! * **Tokenizer, not tree builder.** [`html5gum`] tokenizes by the WHATWG rules (entities,
//!   attributes, raw-text elements, recovery from malformed markup) and gives every token its
//!   byte span, which is what numbering each expanded line by its source line needs. The
//!   structure kept is small (lists and their counters, headings, paragraphs, breaks), so a
//!   stack of open elements here does what a tree builder would, and stays linear.
//! * **When HTML is structure.** In a whole HTML document ([`is_document`]: a `.html`/`.htm`/
//!   `.xhtml` source name, or text that starts with `<!DOCTYPE html` or `<html`) every line is
//!   HTML. In Markdown only *blocks* are: a line that starts (after at most 3 spaces) with a
//!   block-level tag complete on that line (`<ol>`, `<li value="2">`, `<p>`, `<h3>`, `</li>`, `<br>`,
//!   `<!--` …; see [`BLOCK_TAGS`]). The block runs until the elements it opened are all closed
//!   (to the end of that line), and never past a blank line followed by a line that does not
//!   start with `<`, so an unclosed tag cannot swallow the Markdown after it. Inline tags inside
//!   a Markdown line (`<a name="x"></a>`, `<sup>`) are left to the profiles' strip rules.
//! * **What a block becomes.** `<ol>` items are `N. text` (from `start` and `value`, counted on
//!   from the last value; a junk value is ignored), `type="a"`/`"A"` items `a) text`,
//!   `type="i"`/`"I"` items `iv) text`, `<ul>` items and items outside any list `- text`;
//!   nested lists are indented three spaces a level (profiles match on trimmed lines, so this
//!   is only for a person reading the lines). `<hN>` is `#`×N and its text joined on one line;
//!   `<p>`, `<blockquote>`, `<table>` … end with a blank line; `<br>`, `<div>`, `<tr>` break the
//!   line; cells are separated by a space. Entities are decoded; HTML whitespace inside a line
//!   is collapsed to single spaces. A source newline inside text stays a line break (outside
//!   headings), so every output line carries the number of the source line its text is on, and
//!   wrapped text is joined by the profile's `join` exactly as in a plain text.
//! * **Nothing lost.** Every text node ends up in some line. `<head>`, `<script>`, `<style>`,
//!   `<title>`, `<template>`, `<noscript>` contents and comments are dropped, but a dropping
//!   element never closed gives its text back, and so does a tag or comment cut off by the end
//!   of the input (the raw rest of the input becomes text). Source lines that hold only markup
//!   are listed in [`Expanded::markup`]; the parser records them as skipped regions
//!   ([`MARKUP_REASON`]) so the coverage report stays true.
//! * **Shared lines.** Several output lines may carry one source number (`<li>a<li>b` on one
//!   line), so units of an HTML source may share a line: unit ranges come in order but need not
//!   be disjoint (coverage is a sweep over ranges, `review::coverage`, so it stays true).
//! * **Cost.** Text with no HTML block structure returns `None` after one `memchr` pass over
//!   its `<` bytes with a constant-time look at each; untouched Markdown lines are borrowed,
//!   not copied.

use std::borrow::Cow;

use html5gum::{DefaultEmitter, Token, Tokenizer};

use super::engine;
use super::SkippedRegion;

/// The reason given to the skipped regions made of [`Expanded::markup`] lines.
pub(crate) const MARKUP_REASON: &str = "HTML markup";

/// Tags that start an HTML block at the start of a Markdown line (CommonMark's block-level
/// names, plus `br`, `script`, `style` and `title`).
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "script",
    "section",
    "style",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "ul",
];

/// Elements with no end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Elements whose content is not text of the document (the tokenizer reads most of them as raw
/// text, see `naively_switch_states`).
const DROPPED: &[&str] = &[
    "script", "style", "title", "template", "noscript", "iframe", "noembed", "noframes", "xmp",
];

/// Elements allowed in `<head>`; any other start tag, or text, ends the head as in a browser.
const HEAD_CONTENT: &[&str] = &[
    "base", "link", "meta", "script", "style", "title", "template", "noscript",
];

/// Blocks that end with a blank line.
const PARAGRAPHS: &[&str] = &[
    "p",
    "blockquote",
    "section",
    "article",
    "table",
    "pre",
    "dl",
    "hr",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "figure",
    "address",
    "details",
    "fieldset",
    "form",
    "center",
    "dialog",
    "ol",
    "ul",
    "menu",
    "dir",
];

/// Elements that break the line.
const BREAKS: &[&str] = &[
    "div",
    "tr",
    "caption",
    "summary",
    "figcaption",
    "legend",
    "dt",
    "dd",
    "body",
    "html",
    "br",
    "li",
    "thead",
    "tbody",
    "tfoot",
];

/// The lines a text with HTML stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded<'t> {
    /// Every line of the document in order, as (1-based source line, text): lines outside HTML
    /// borrowed as they are, HTML replaced by the lines it stands for, several of which may
    /// share a source line (`<p>a</p><p>b</p>`). Numbers never decrease.
    pub(crate) lines: Vec<(u32, Cow<'t, str>)>,
    /// Source lines inside HTML that hold only markup (tags, comments, dropped content), and
    /// blank lines between two of them; ascending.
    pub(crate) markup: Vec<u32>,
    /// Lines in the source (the scanner sees only the lines that hold text).
    pub(crate) line_count: u32,
}

/// Whether `text` (named `source_name` when known) is a whole HTML document rather than
/// Markdown or plain text with HTML blocks in it: a `.html`, `.htm` or `.xhtml` name, or a
/// text that starts (after a byte-order mark and whitespace) with `<!DOCTYPE html` or `<html`.
/// Detection has no name, so an HTML fragment without either start is read as Markdown, where
/// its block-level tags at line starts are still structure.
pub(crate) fn is_document(source_name: Option<&str>, text: &str) -> bool {
    let by_name = source_name.is_some_and(|name| {
        let name = name.to_ascii_lowercase();
        name.ends_with(".html") || name.ends_with(".htm") || name.ends_with(".xhtml")
    });
    let start = text.trim_start_matches('\u{feff}').trim_start().as_bytes();
    let starts = |prefix: &[u8]| {
        start
            .get(..prefix.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(prefix))
    };
    by_name
        || starts(b"<!doctype html")
        || (starts(b"<html")
            && start
                .get(5)
                .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>'))
}

/// Expands the HTML in `text` (see the module documentation), or `None` when there is none:
/// no `<` at all in a whole document, no block-level tag at a line start in Markdown.
pub(crate) fn expand(text: &str, whole_document: bool) -> Option<Expanded<'_>> {
    let bytes = text.as_bytes();
    let lone_cr = memchr::memchr_iter(b'\r', bytes).any(|at| bytes.get(at + 1) != Some(&b'\n'));
    if !lone_cr {
        return expand_lf(text, whole_document);
    }
    // A lone `\r` ends a line for the scanner (`engine::lines`); read as `\n` here, so the
    // line numbers below (which count `\n`) agree. Rare, so the lines are copied.
    let lf = text.replace("\r\n", "\n").replace('\r', "\n");
    let expanded = expand_lf(&lf, whole_document)?;
    Some(Expanded {
        lines: expanded
            .lines
            .into_iter()
            .map(|(n, line)| (n, Cow::Owned(line.into_owned())))
            .collect(),
        markup: expanded.markup,
        line_count: expanded.line_count,
    })
}

/// The first `n` lines of `text`, for detection to expand no more than it looks at.
pub(crate) fn first_lines(text: &str, n: usize) -> &str {
    match memchr::memchr_iter(b'\n', text.as_bytes()).nth(n.saturating_sub(1)) {
        Some(at) => text.get(..=at).unwrap_or(text),
        None => text,
    }
}

/// [`expand`] of a text whose lines end in `\n` (or `\r\n`).
fn expand_lf(text: &str, whole_document: bool) -> Option<Expanded<'_>> {
    let mut out = Expanded {
        lines: Vec::new(),
        markup: Vec::new(),
        line_count: count_lines(text),
    };
    if whole_document {
        memchr::memchr(b'<', text.as_bytes())?;
        expand_block(text, 1, false, &mut out);
        return Some(out);
    }
    let mut block = next_block_start(text, 0)?;
    let mut at = 0;
    let mut line_no = 1u32;
    loop {
        for line in engine::lines(text.get(at..block).unwrap_or("")) {
            out.lines.push((line_no, Cow::Borrowed(line)));
            line_no += 1;
        }
        let end = block_extent(text, block);
        let slice = text.get(block..end).unwrap_or("");
        let used = expand_block(slice, line_no, true, &mut out);
        let consumed = slice.get(..used).unwrap_or("");
        line_no += count_lines(consumed);
        at = block + used;
        match next_block_start(text, at) {
            Some(next) => block = next,
            None => break,
        }
    }
    for line in engine::lines(text.get(at..).unwrap_or("")) {
        out.lines.push((line_no, Cow::Borrowed(line)));
        line_no += 1;
    }
    Some(out)
}

/// Adds `markup` lines to `skipped` as regions of [`MARKUP_REASON`] (consecutive lines make
/// one region), leaving out lines a region of the profile already holds, and keeps `skipped`
/// sorted by line.
pub(crate) fn add_markup(skipped: &mut Vec<SkippedRegion>, markup: &[u32]) {
    if markup.is_empty() {
        return;
    }
    let held = |line: u32| {
        let i = skipped.partition_point(|r| r.line_start <= line);
        i > 0 && skipped.get(i - 1).is_some_and(|r| r.line_end >= line)
    };
    let mut regions: Vec<SkippedRegion> = Vec::new();
    for &line in markup {
        if held(line) {
            continue;
        }
        match regions.last_mut() {
            Some(last) if last.line_end + 1 == line => last.line_end = line,
            _ => regions.push(SkippedRegion {
                line_start: line,
                line_end: line,
                reason: MARKUP_REASON.to_string(),
            }),
        }
    }
    skipped.extend(regions);
    skipped.sort_by_key(|r| r.line_start);
}

/// Lines in `s` as [`engine::lines`] counts them.
fn count_lines(s: &str) -> u32 {
    let newlines = memchr::memchr_iter(b'\n', s.as_bytes()).count();
    let unterminated = usize::from(!s.is_empty() && !s.ends_with('\n'));
    u32::try_from(newlines + unterminated).unwrap_or(u32::MAX)
}

/// The byte offset of the start of the first line at or after `from` (itself a line start)
/// that opens an HTML block in Markdown.
fn next_block_start(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(i) = bytes.get(at..).and_then(|rest| memchr::memchr(b'<', rest)) {
        let lt = at + i;
        let mut start = lt;
        while start > from && lt - start < 3 && bytes.get(start - 1) == Some(&b' ') {
            start -= 1;
        }
        let at_line_start = start == from || bytes.get(start.wrapping_sub(1)) == Some(&b'\n');
        if at_line_start && opens_block(bytes.get(lt..).unwrap_or(&[])) {
            return Some(start);
        }
        at = lt + 1;
    }
    None
}

/// Whether `rest` (starting at a `<` at a line start) opens a block: a comment, or a start or
/// end tag of [`BLOCK_TAGS`] that closes on this line.
fn opens_block(rest: &[u8]) -> bool {
    if rest.starts_with(b"<!--") {
        return true;
    }
    let after = match rest.get(1) {
        Some(b'/') => 2,
        _ => 1,
    };
    let name_len = rest
        .get(after..)
        .unwrap_or(&[])
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let Some(name) = rest.get(after..after + name_len) else {
        return false;
    };
    if name.is_empty() || name.len() > 10 {
        return false;
    }
    let boundary = rest
        .get(after + name_len)
        .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/');
    if !boundary
        || !BLOCK_TAGS
            .iter()
            .any(|tag| tag.as_bytes().eq_ignore_ascii_case(name))
    {
        return false;
    }
    let line_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    memchr::memchr(b'>', rest.get(..line_end).unwrap_or(&[])).is_some()
}

/// The end (exclusive byte offset) of the longest stretch an HTML block starting at `start`
/// may cover in Markdown: up to a blank line whose next non-blank line does not start with `<`,
/// or the end of the text.
fn block_extent(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let line_at = |pos: usize| -> (&str, usize) {
        let end = bytes
            .get(pos..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
            .map_or(bytes.len(), |i| pos + i);
        (text.get(pos..end).unwrap_or(""), (end + 1).min(bytes.len()))
    };
    let mut pos = start;
    while pos < bytes.len() {
        let (line, next) = line_at(pos);
        if line.trim().is_empty() {
            let mut ahead = next;
            while ahead < bytes.len() {
                let (candidate, after) = line_at(ahead);
                if !candidate.trim().is_empty() {
                    break;
                }
                ahead = after;
            }
            let (candidate, _) = line_at(ahead);
            if ahead >= bytes.len() || !candidate.trim_start().starts_with('<') {
                return pos;
            }
            pos = ahead;
            continue;
        }
        pos = next;
    }
    bytes.len()
}

/// An open element and, for a list, its counter.
struct Open {
    name: String,
    list: Option<List>,
}

struct List {
    ordered: bool,
    /// `1`, `a`, `A`, `i` or `I`.
    style: u8,
    next: i64,
}

/// Maps byte offsets (which come in increasing order) to 1-based line numbers.
struct Lines<'s> {
    bytes: &'s [u8],
    pos: usize,
    line: u32,
}

impl Lines<'_> {
    fn at(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.bytes.len());
        if offset >= self.pos {
            let n =
                memchr::memchr_iter(b'\n', self.bytes.get(self.pos..offset).unwrap_or(&[])).count();
            self.line += u32::try_from(n).unwrap_or(u32::MAX);
        } else {
            let n =
                memchr::memchr_iter(b'\n', self.bytes.get(offset..self.pos).unwrap_or(&[])).count();
            self.line -= u32::try_from(n).unwrap_or(0).min(self.line - 1);
        }
        self.pos = offset;
        self.line
    }
}

/// Builds the lines of one HTML stretch.
struct Expander<'o, 't> {
    out: &'o mut Vec<(u32, Cow<'t, str>)>,
    first_line: u32,
    /// Per source line of the stretch: some text was taken from it.
    has_text: Vec<bool>,
    cur: String,
    cur_line: u32,
    space: bool,
    /// A list marker or heading's `#`s waiting for the first text, with the line of its tag.
    prefix: Option<(u32, String, bool)>,
    heading: bool,
    open: Vec<Open>,
    /// Inside a dropped element: its name and the text kept in case it never closes.
    dropping: Option<(String, Vec<(u32, String)>)>,
    in_head: bool,
}

impl<'t> Expander<'_, 't> {
    fn mark(&mut self, line: u32) {
        let index = line.saturating_sub(self.first_line) as usize;
        if let Some(slot) = self.has_text.get_mut(index) {
            *slot = true;
        }
    }

    /// Text from one source line (no newline in it).
    fn text(&mut self, line: u32, piece: &str) {
        if let Some((_, kept)) = &mut self.dropping {
            kept.push((line, piece.to_string()));
            return;
        }
        for c in piece.chars() {
            if matches!(c, ' ' | '\t' | '\r' | '\x0c') {
                self.space = !self.cur.is_empty();
                continue;
            }
            if self.cur.is_empty() {
                self.cur_line = line;
                if self.in_head {
                    // Text ends the head, as in a browser.
                    self.in_head = false;
                }
            } else if self.space {
                self.cur.push(' ');
            }
            self.space = false;
            self.cur.push(c);
            self.mark(line);
        }
    }

    /// A newline inside text: a line break, or a space inside a heading.
    fn newline(&mut self) {
        if let Some((_, kept)) = &mut self.dropping {
            kept.push((0, String::new()));
            return;
        }
        if self.heading {
            self.space = !self.cur.is_empty();
        } else {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.cur.is_empty() {
            return;
        }
        let line = match self.prefix.take() {
            Some((_, prefix, _)) => prefix + &self.cur,
            None => self.cur.clone(),
        };
        self.out.push((self.cur_line, Cow::Owned(line)));
        self.cur.clear();
        self.space = false;
    }

    /// Ends a list item: its text, or its marker alone when it had none.
    fn end_item(&mut self) {
        self.flush();
        if let Some((at, prefix, is_heading)) = self.prefix.take() {
            if !is_heading {
                let at = self.out.last().map_or(at, |(n, _)| (*n).max(at));
                self.out
                    .push((at, Cow::Owned(prefix.trim_end().to_string())));
                self.mark(at);
            }
        }
    }

    fn paragraph_break(&mut self, line: u32) {
        self.flush();
        let last_blank = self.out.last().is_none_or(|(_, l)| l.trim().is_empty());
        if !last_blank {
            let at = self.out.last().map_or(line, |(n, _)| (*n).max(line));
            self.out.push((at, Cow::Borrowed("")));
        }
    }

    fn start_tag(&mut self, name: &str, attr: impl Fn(&str) -> Option<String>, line: u32) {
        if self.dropping.is_some() {
            return;
        }
        if self.in_head && !HEAD_CONTENT.contains(&name) {
            self.in_head = false;
        }
        if DROPPED.contains(&name) {
            self.flush();
            self.dropping = Some((name.to_string(), Vec::new()));
            return;
        }
        if name == "head" {
            self.in_head = true;
            return;
        }
        if self.in_head {
            return;
        }
        // Implicit ends: a new paragraph ends an open `p`, an item an open item of its list.
        if matches!(name, "p" | "li" | "dt" | "dd") || PARAGRAPHS.contains(&name) {
            if let Some(top) = self.open.last() {
                let closes =
                    top.name == "p" || (matches!(name, "li" | "dt" | "dd") && top.name == name);
                if closes {
                    self.open.pop();
                }
            }
        }
        if let Some(level) = heading_level(name) {
            self.end_pending_marker();
            self.paragraph_break(line);
            self.prefix = Some((line, format!("{} ", "#".repeat(level)), true));
            self.heading = true;
        } else if name == "li" {
            self.end_item();
            self.start_item(attr("value"), line);
        } else if name == "ol" || name == "ul" || name == "menu" || name == "dir" {
            self.flush();
            let ordered = name == "ol";
            let style = attr("type")
                .and_then(|t| t.bytes().next())
                .filter(|b| matches!(b, b'1' | b'a' | b'A' | b'i' | b'I'))
                .unwrap_or(b'1');
            let next = attr("start")
                .and_then(|s| s.trim().parse::<i64>().ok())
                .unwrap_or(1);
            self.open.push(Open {
                name: name.to_string(),
                list: Some(List {
                    ordered,
                    style,
                    next,
                }),
            });
            return;
        } else if PARAGRAPHS.contains(&name) {
            self.paragraph_break(line);
        } else if BREAKS.contains(&name) {
            self.flush();
        } else if matches!(name, "td" | "th") {
            self.space = !self.cur.is_empty();
        }
        if !VOID.contains(&name) {
            self.open.push(Open {
                name: name.to_string(),
                list: None,
            });
        }
    }

    /// A heading inside an item with no text yet: the item's marker stands alone.
    fn end_pending_marker(&mut self) {
        if self.cur.is_empty() && self.prefix.as_ref().is_some_and(|p| !p.2) {
            self.end_item();
        }
    }

    fn start_item(&mut self, value: Option<String>, line: u32) {
        // An item not closed before the next one of the same list ends here.
        let list_at = self.open.iter().rposition(|o| o.list.is_some());
        if let Some(li) = self.open.iter().rposition(|o| o.name == "li") {
            if list_at.is_none_or(|l| li > l) {
                self.open.truncate(li);
            }
        }
        let depth = self.open.iter().filter(|o| o.list.is_some()).count();
        let indent = "   ".repeat(depth.saturating_sub(1));
        let list_at = self.open.iter().rposition(|o| o.list.is_some());
        let marker = match list_at.and_then(|i| self.open.get_mut(i)?.list.as_mut()) {
            Some(list) if list.ordered => {
                if let Some(v) = value.and_then(|v| v.trim().parse::<i64>().ok()) {
                    list.next = v;
                }
                let n = list.next;
                list.next = n.saturating_add(1);
                marker(n, list.style)
            }
            _ => "-".to_string(),
        };
        self.prefix = Some((line, format!("{indent}{marker} "), false));
        self.open.push(Open {
            name: "li".to_string(),
            list: None,
        });
    }

    fn end_tag(&mut self, name: &str, line: u32) {
        if let Some((dropped, _)) = &self.dropping {
            if dropped == name {
                self.dropping = None;
            }
            return;
        }
        if name == "head" {
            self.in_head = false;
            return;
        }
        if let Some(at) = self.open.iter().rposition(|o| o.name == name) {
            self.open.truncate(at);
        }
        if heading_level(name).is_some() {
            self.heading = false;
            self.flush();
            // A heading with no text: its `#`s go.
            if self.prefix.as_ref().is_some_and(|p| p.2) {
                self.prefix = None;
            }
            self.paragraph_break(line);
        } else if matches!(name, "li" | "dt" | "dd") {
            self.end_item();
        } else if matches!(name, "ol" | "ul" | "menu" | "dir")
            && self.open.iter().any(|o| o.name == "li")
        {
            // A list nested in an item: the item goes on after it.
            self.end_item();
        } else if PARAGRAPHS.contains(&name) {
            self.end_item();
            self.paragraph_break(line);
        } else if BREAKS.contains(&name) {
            self.flush();
        } else if matches!(name, "td" | "th") {
            self.space = !self.cur.is_empty();
        }
    }

    /// The end of the stretch: pending text, a marker with no text, the text of a dropping
    /// element that never closed.
    fn finish(&mut self) {
        self.heading = false;
        self.end_item();
        if let Some((_, kept)) = self.dropping.take() {
            for (at, piece) in kept {
                if piece.is_empty() && at == 0 {
                    self.flush();
                } else {
                    self.text(at, &piece);
                }
            }
            self.flush();
        }
        self.flush();
    }
}

fn heading_level(name: &str) -> Option<usize> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(usize::from(d - b'0')),
        _ => None,
    }
}

/// The marker of item `n` in a list of `style`: `3.`, `c)`, `iii)`.
fn marker(n: i64, style: u8) -> String {
    match style {
        b'a' | b'A' if n >= 1 => {
            // Bijective base 26, as browsers count past `z`: `aa`, `ab` …
            let mut letters = Vec::new();
            let mut rest = n;
            while rest > 0 {
                rest -= 1;
                let offset = u8::try_from(rest % 26).unwrap_or(0);
                letters.push(if style == b'a' { b'a' } else { b'A' } + offset);
                rest /= 26;
            }
            letters.reverse();
            format!("{})", String::from_utf8_lossy(&letters))
        }
        b'i' | b'I' if (1..4000).contains(&n) => {
            let mut roman = String::new();
            let mut rest = n;
            for (value, digits) in [
                (1000, "m"),
                (900, "cm"),
                (500, "d"),
                (400, "cd"),
                (100, "c"),
                (90, "xc"),
                (50, "l"),
                (40, "xl"),
                (10, "x"),
                (9, "ix"),
                (5, "v"),
                (4, "iv"),
                (1, "i"),
            ] {
                while rest >= value {
                    roman.push_str(digits);
                    rest -= value;
                }
            }
            if style == b'I' {
                roman.make_ascii_uppercase();
            }
            format!("{roman})")
        }
        _ => format!("{n}."),
    }
}

/// Expands the HTML stretch `slice`, whose first line is source line `first_line`, onto `out`.
/// With `bounded` (a block in Markdown) it stops at the end of the line where every element
/// the block opened is closed. Returns how many bytes of `slice` it took (whole lines, or all).
fn expand_block<'t>(
    slice: &'t str,
    first_line: u32,
    bounded: bool,
    out: &mut Expanded<'t>,
) -> usize {
    let bytes = slice.as_bytes();
    let line_total = count_lines(slice).max(1) as usize;
    let mut x = Expander {
        out: &mut out.lines,
        first_line,
        has_text: vec![false; line_total],
        cur: String::new(),
        cur_line: first_line,
        space: false,
        prefix: None,
        heading: false,
        open: Vec::new(),
        dropping: None,
        in_head: false,
    };
    let mut lines = Lines {
        bytes,
        pos: 0,
        line: first_line,
    };
    let mut emitter = DefaultEmitter::<usize>::new_with_span();
    emitter.naively_switch_states(true);
    // Where the bounded block may end (a line), once every element it opened is closed.
    let mut end_line: Option<u32> = None;
    let mut stopped = false;
    let mut covered = 0usize;
    for token in Tokenizer::new_with_emitter(slice, emitter) {
        let Ok(token) = token;
        let (start, end) = match &token {
            Token::StartTag(t) => (t.span.start, t.span.end),
            Token::EndTag(t) => (t.span.start, t.span.end),
            Token::String(s) => (s.span.start, s.span.end),
            Token::Comment(c) => (c.span.start, c.span.end),
            Token::Doctype(d) => (d.span.start, d.span.end),
            Token::Error(_) => continue,
        };
        let line = lines.at(start);
        if let Some(last) = end_line {
            if line > last {
                stopped = true;
                break;
            }
        }
        match token {
            Token::String(s) => {
                let value = String::from_utf8_lossy(&s.value);
                let source_newlines =
                    memchr::memchr_iter(b'\n', bytes.get(start..end).unwrap_or(&[])).count();
                for (k, piece) in value.split('\n').enumerate() {
                    let at = line + u32::try_from(k.min(source_newlines)).unwrap_or(u32::MAX);
                    if end_line.is_some_and(|last| at > last) {
                        stopped = true;
                        break;
                    }
                    if k > 0 {
                        x.newline();
                    }
                    x.text(at, piece);
                }
                if stopped {
                    break;
                }
            }
            Token::StartTag(t) => {
                let name = String::from_utf8_lossy(&t.name).to_ascii_lowercase();
                let attr = |key: &str| {
                    t.attributes
                        .get(key.as_bytes())
                        .map(|v| String::from_utf8_lossy(&v.value).into_owned())
                };
                x.start_tag(&name, attr, line);
            }
            Token::EndTag(t) => {
                let name = String::from_utf8_lossy(&t.name).to_ascii_lowercase();
                x.end_tag(&name, line);
            }
            // Comments and doctypes are markup; one cut off by the end of the input is not
            // (below, its text comes back).
            Token::Comment(_) | Token::Doctype(_) => {
                if bytes.get(..end).is_some_and(|b| !b.ends_with(b">")) {
                    continue;
                }
            }
            Token::Error(_) => {}
        }
        covered = covered.max(end);
        if bounded {
            end_line = if x.open.is_empty() && x.dropping.is_none() && !x.in_head {
                Some(lines.at(end.saturating_sub(1).max(start)))
            } else {
                None
            };
        }
    }
    // Where the stretch ends: after the end line's newline, or the whole slice.
    let used = match (stopped, end_line) {
        (true, Some(last)) => {
            let skip = (last - first_line) as usize;
            memchr::memchr_iter(b'\n', bytes)
                .nth(skip)
                .map_or(bytes.len(), |i| i + 1)
        }
        _ => bytes.len(),
    };
    if !stopped && covered < bytes.len() {
        // A tag, comment or doctype cut off by the end of the input: its raw text is kept.
        let rest = slice.get(covered..).unwrap_or("");
        if !rest.trim().is_empty() {
            let mut at = lines.at(covered);
            x.flush();
            for (k, piece) in rest.split('\n').enumerate() {
                if k > 0 {
                    x.newline();
                    at += 1;
                }
                x.text(at, piece);
            }
        }
    }
    x.finish();
    // Markup lines: non-blank lines no text came from, with blank lines between two of them.
    let has_text = std::mem::take(&mut x.has_text);
    let mut blanks: Vec<u32> = Vec::new();
    let mut after_markup = false;
    for (index, source) in engine::lines(slice.get(..used).unwrap_or("")).enumerate() {
        let n = first_line + u32::try_from(index).unwrap_or(u32::MAX);
        if source.trim().is_empty() {
            if after_markup {
                blanks.push(n);
            }
        } else if has_text.get(index).copied().unwrap_or(false) {
            after_markup = false;
            blanks.clear();
        } else {
            out.markup.append(&mut blanks);
            out.markup.push(n);
            after_markup = true;
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(e: &Expanded<'_>) -> Vec<(u32, String)> {
        e.lines.iter().map(|(n, l)| (*n, l.to_string())).collect()
    }

    fn owned(pairs: &[(u32, &str)]) -> Vec<(u32, String)> {
        pairs.iter().map(|(n, l)| (*n, l.to_string())).collect()
    }

    #[test]
    fn text_without_html_blocks_is_not_expanded() {
        assert_eq!(expand("# Title\n\nArticle 1\n\nText", false), None);
        // Inline tags, and tags not at a line start, are no blocks.
        assert_eq!(
            expand(
                "<a name=\"rec1\"></a>\n(1) Text <sup>1</sup> and <ol> inline",
                false
            ),
            None
        );
        // A block tag not closed on its line (`<ol` wrapped) is no block either.
        assert_eq!(expand("<ol\nclass=\"x\">", false), None);
        assert_eq!(expand("plain text", true), None);
    }

    #[test]
    fn gdpr_article_8_list_becomes_numbered_paragraphs() {
        let text = "1.   Where point a. applies.\n      \nMember States may.  \n\n<ol>\n    <li value=\"2\">\n        The controller shall &amp; verify.\n    </li>  \n    <li>\n        Paragraph 1 shall not affect.\n    </li>\n</ol>  \n\n@@@\nnote\n@@@\n";
        let e = expand(text, false).unwrap();
        assert_eq!(
            lines(&e),
            owned(&[
                (1, "1.   Where point a. applies."),
                (2, "      "),
                (3, "Member States may.  "),
                (4, ""),
                (7, "2. The controller shall & verify."),
                (10, "3. Paragraph 1 shall not affect."),
                (12, ""),
                (13, ""),
                (14, "@@@"),
                (15, "note"),
                (16, "@@@"),
            ])
        );
        assert_eq!(e.markup, [5, 6, 8, 9, 11, 12]);
    }

    #[test]
    fn list_styles_starts_values_and_nesting() {
        let text = "<ol start=\"3\"><li>three<li value=\"x\">four (junk value)\n<li value=\"7\">seven<ol type=\"a\"><li>a<li>b</ol></li><li>eight</li></ol>\n<ol type=\"I\"><li value=\"4\">iv</ol><ul><li>dash</ul><li>stray item</li>";
        let e = expand(text, true).unwrap();
        let got: Vec<String> = e.lines.iter().map(|(_, l)| l.to_string()).collect();
        assert_eq!(
            got,
            [
                "3. three",
                "4. four (junk value)",
                "7. seven",
                "   a) a",
                "   b) b",
                "8. eight",
                "",
                "IV) iv",
                "",
                "- dash",
                "",
                "- stray item",
            ]
        );
        assert!(e.markup.is_empty());
    }

    #[test]
    fn headings_paragraphs_breaks_entities_and_whitespace() {
        let text = "<!DOCTYPE html>\n<html><head><title>Dropped</title>\n<style>p { x: 1 }</style></head>\n<body>\n<h2>Chapter   1 &mdash;\n Name</h2>\n<p>First   line<br>second&nbsp;line\nwrapped</p><p>Next</p>\n<!-- a comment -->\n</body></html>\n";
        let e = expand(text, is_document(None, text)).unwrap();
        assert_eq!(
            lines(&e),
            owned(&[
                (5, "## Chapter 1 — Name"),
                (6, ""),
                (7, "First line"),
                (7, "second\u{a0}line"),
                (8, "wrapped"),
                (8, ""),
                (8, "Next"),
                (8, ""),
            ])
        );
        assert_eq!(e.markup, [1, 2, 3, 4, 9, 10]);
    }

    #[test]
    fn markdown_block_ends_where_its_elements_close() {
        let text = "Intro\n<p>Para\n</p>\nMarkdown after, with <b>inline</b>\n<br>After break\nstill Markdown\n";
        let e = expand(text, false).unwrap();
        assert_eq!(
            lines(&e),
            owned(&[
                (1, "Intro"),
                (2, ""),
                (2, "Para"),
                (3, ""),
                (4, "Markdown after, with <b>inline</b>"),
                (5, "After break"),
                (6, "still Markdown"),
            ])
        );
        assert_eq!(e.markup, [3]);
    }

    #[test]
    fn unclosed_block_stops_at_a_blank_line_before_markdown() {
        let text = "<div>\nInside\n\n## Heading after\n";
        let e = expand(text, false).unwrap();
        assert_eq!(
            lines(&e),
            owned(&[(2, "Inside"), (3, ""), (4, "## Heading after")])
        );
        assert_eq!(e.markup, [1]);
    }

    #[test]
    fn cut_off_markup_and_unclosed_dropped_elements_give_their_text_back() {
        let e = expand("<p>kept</p>\n<script>var x\nmore", true).unwrap();
        let got: Vec<&str> = e.lines.iter().map(|(_, l)| l.as_ref()).collect();
        assert_eq!(got, ["kept", "", "var x", "more"]);
        let e = expand("<p>kept</p>\n<li value=\"2\" words here", true).unwrap();
        let text: String = e.lines.iter().map(|(_, l)| l.as_ref()).collect();
        assert!(text.contains("words here"), "{text}");
        let e = expand("<p>kept</p>\n<!-- never closed\ncomment words", true).unwrap();
        let text: String = e.lines.iter().map(|(_, l)| l.as_ref()).collect();
        assert!(text.contains("comment words"), "{text}");
    }

    #[test]
    fn whole_document_by_name_or_start() {
        assert!(is_document(Some("law.HTML"), "text"));
        assert!(is_document(Some("law.htm"), "text"));
        assert!(is_document(None, "\u{feff}\n  <!doctype HTML>"));
        assert!(is_document(None, "<html lang=\"en\">"));
        assert!(!is_document(None, "<htmlx>"));
        assert!(!is_document(Some("law.md"), "# Law\n<ol><li>x</li></ol>"));
    }

    #[test]
    fn markup_regions_merge_and_avoid_existing_regions() {
        let mut skipped = vec![SkippedRegion {
            line_start: 4,
            line_end: 6,
            reason: "annotation".into(),
        }];
        add_markup(&mut skipped, &[1, 2, 5, 7, 8, 10]);
        let got: Vec<(u32, u32, &str)> = skipped
            .iter()
            .map(|r| (r.line_start, r.line_end, r.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, 2, MARKUP_REASON),
                (4, 6, "annotation"),
                (7, 8, MARKUP_REASON),
                (10, 10, MARKUP_REASON),
            ]
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Tag soup: words (the text nodes), tags in any order, malformed attribute values,
        /// stray end tags, newlines, entities, a lone `<`.
        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                // Spaced: `w0<b>w1` is one word, `w0w1`, in HTML too.
                4 => "w[0-9]{1,4}".prop_map(|w| format!(" {w} ")),
                1 => prop::sample::select(vec![
                    "<ol>", "</ol>", "<ol start=\"x\">", "<ol type=\"a\">", "<ol start=\"-3\" type=\"i\">",
                    "<li>", "</li>", "<li value=\"2\">", "<li value=\"zz\">", "<li value=\"99999999999999999999\">",
                    "<ul>", "</ul>", "<p>", "</p>", "<br>", "<br/>", "<h2>", "</h2>", "</h5>",
                    "<div>", "</div>", "<b>", "</b>", "<td>", "<tr>", "<head>", "</head>",
                    "<title>t</title>", "<script>s</script>", "<!-- c -->", "&amp;", "&bogus;", " < ",
                ])
                .prop_map(str::to_string),
                2 => prop::sample::select(vec![" ", "\n", "\n\n", "  \t", "\r\n"]).prop_map(str::to_string),
            ]
        }

        fn words(s: &str) -> Vec<String> {
            let mut found = Vec::new();
            let bytes = s.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'w' && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
                    let len = bytes[i + 1..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    if len > 0 {
                        found.push(s[i..i + 1 + len].to_string());
                    }
                    i += 1 + len;
                } else {
                    i += 1;
                }
            }
            found
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]
            #[test]
            fn malformed_html_never_panics_and_loses_no_word(
                pieces in prop::collection::vec(piece(), 0..60),
                whole in any::<bool>(),
            ) {
                let text: String = pieces.concat();
                let source_lines = count_lines(&text);
                if let Some(e) = expand(&text, whole) {
                    let all: String = e.lines.iter().map(|(_, l)| format!("{l}\n")).collect();
                    let got = words(&all);
                    for w in words(&text) {
                        prop_assert!(got.contains(&w), "{w} lost from {text:?}: {all:?}");
                    }
                    let mut last = 0;
                    for (n, _) in &e.lines {
                        prop_assert!(*n >= last && *n >= 1 && *n <= source_lines.max(1), "{:?}", e.lines);
                        last = *n;
                    }
                    // No line is both markup and the source of text.
                    for m in &e.markup {
                        prop_assert!(e.lines.iter().all(|(n, l)| n != m || l.trim().is_empty()), "{m} {:?}", e.lines);
                    }
                }
            }
        }
    }
}
