//! The built-in grammar profiles, written in the same TOML format users write their own in.
//!
//! Keeping them as TOML (rather than Rust structs) means every built-in is also a worked
//! example of the format, and the format can express everything the built-ins need.

/// Vietnamese legal documents: Phần, Chương, Mục, Tiểu mục, Điều, khoản `1.`, điểm `a)`.
pub(crate) const VN_LEGAL: &str = r#"
name = "vn-legal"
description = "Vietnamese legal documents: Phần, Chương, Mục, Tiểu mục, Điều, khoản 1., điểm a)"
join = "space"
detect = ['^(?:Điều|ĐIỀU)\s+\d+', '^(?:Chương|CHƯƠNG)\s+(?:[IVXLCDM]+|\d+)\b']
strip = ['\s*\[\^[^\]]+\]']
# A unit with no text at all is a repealed provision; `repeal_markers` is left to its default
# list (`(bãi bỏ)`, `(đã bị bãi bỏ)`, … see docs/profiles.md).
empty_body = "repealed"

[toc]
start = '^(?:MỤC LỤC|Mục lục)\s*:?$'

[[skip]]
reason = "page header"
start = '^(?:Trang|TRANG)\s+\d+(?:\s*/\s*\d+)?$'

[[skip]]
reason = "page number"
start = '^-\s*\d+\s*-$'

[[skip]]
reason = "annotation"
start = '^@@@'
end = '^@@@$'

[[skip]]
reason = "footnote"
start = '^\[\^[^\]]+\]:'

[[level]]
kind = "preamble"
key = "preamble"
pattern = '^(?P<title>LỜI NÓI ĐẦU|Lời nói đầu|LỜI MỞ ĐẦU|Lời mở đầu)\s*:?$'
title = "Lời nói đầu"
section_type = "preamble"
depth = 0
closed = true
max = 1
numbering = "none"

[[level]]
kind = "part"
key = "part"
pattern = '^(?:PHẦN|Phần)\s+(?P<num>[IVXLCDM]+|\d+|(?:THỨ|[Tt]hứ)\s+\p{L}+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Phần {num}"
title_line = '^[^\p{Ll}]+$'
numbering = "document"
depth = 1

[[level]]
kind = "chapter"
key = "ch"
pattern = '^(?:CHƯƠNG|Chương)\s+(?P<num>[IVXLCDM]+|\d+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Chương {num}"
title_line = '^[^\p{Ll}]+$'
numbering = "document"
depth = 2

[[level]]
kind = "section"
key = "sec"
pattern = '^(?:MỤC|Mục)\s+(?P<num>\d+|[IVXLCDM]+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Mục {num}"
title_line = '^[^\p{Ll}]+$'
depth = 3

[[level]]
kind = "subsection"
key = "subsec"
pattern = '^(?:TIỂU MỤC|Tiểu mục)\s+(?P<num>\d+|[IVXLCDM]+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Tiểu mục {num}"
title_line = '^[^\p{Ll}]+$'
depth = 4

[[level]]
kind = "article"
key = "art"
pattern = '^(?:ĐIỀU|Điều)\s+(?P<num>\d+(?:-\d+)*[a-z]?)(?:\s*[.:\-–—]\s*|\s*$)|^(?:ĐIỀU|Điều)\s+(?P<num2>\d+(?:-\d+)*[a-z]?)\s+(?P<title>\([^()]*\))$'
title = "Điều {num}"
numbering = "document"
depth = 5

[[level]]
kind = "clause"
key = "cl"
pattern = '^(?P<num>\d+)\.\s+'
rest = "body"
title = "Khoản {num}"
within = ["article"]

[[level]]
kind = "point"
key = "pt"
pattern = '^(?P<num>[a-zđ])\)\s+'
rest = "body"
title = "Điểm {num}"
within = ["clause", "article"]
alphabet = "abcdđeghiklmnopqrstuvxy"

[[level]]
kind = "annex"
key = "annex"
pattern = '^(?:PHỤ LỤC|Phụ lục)(?:\s+(?P<num>[IVXLCDM]+|\d+))?(?:\s*[.:\-–—]\s*|\s*$)'
title = "Phụ lục {num}"
title_line = '^[^\p{Ll}]+$'
section_type = "annex"
numbering = "document"
depth = 0
"#;

/// English-language legal texts: preamble, recitals, Part/Title/Chapter, Section,
/// Article/Amendment, numbered paragraphs, points `(a)`, annexes, closing formula.
pub(crate) const EN_LEGAL: &str = r#"
name = "en-legal"
description = "English-language legal texts: preamble, recitals, Part/Title/Chapter, Section, Article/Amendment, numbered paragraphs, points (a)"
join = "space"
detect = ['^(?:#{1,6}\s*)?(?:Article|ARTICLE|Amendment|AMENDMENT)\s+(?:\d+|[IVXLCDM]+)\b']
strip = ['\s*\[\^[^\]]+\]', '\s*<a name="[^"]*"></a>', '\s+\|$', '^>\s?']
# A unit with no text at all is a repealed provision; `repeal_markers` is left to its default
# list (`(repealed)`, `[Repealed]`, `Repealed.`, … see docs/profiles.md).
empty_body = "repealed"

[toc]
start = '^(?:#{1,6}\s*)?(?:Table of Contents|TABLE OF CONTENTS|Contents|CONTENTS)$'

[[skip]]
reason = "page header"
start = '^\d{1,2}\.\d{1,2}\.\d{4}\s+\|.*\|\s*L\s*\d+/\d+$'

[[skip]]
reason = "page footer"
start = '^(?:Page|PAGE)\s+\d+(?:\s+of\s+\d+)?$'

[[skip]]
reason = "page number"
start = '^-\s*\d+\s*-$'

[[skip]]
reason = "annotation"
start = '^@@@'
end = '^@@@$'

[[skip]]
reason = "anchor"
start = '^<a name="[^"]*"></a>$'

[[skip]]
reason = "footnote"
start = '^\[\^[^\]]+\]:'

[[level]]
kind = "preamble"
key = "preamble"
pattern = '^(?:#{1,6}\s*)?(?P<title>PREAMBLE|Preamble)\s*:?$'
title = "Preamble"
section_type = "preamble"
depth = 0
closed = true
max = 1
numbering = "none"

# An EU-style act has no "Preamble" heading: its citations are a block quote right after the
# front matter. Only the first unit of a document can start this way.
[[level]]
kind = "preamble"
key = "preamble"
pattern = '^>'
rest = "line"
title = "Preamble"
section_type = "preamble"
depth = 0
closed = true
max = 1
first_only = true
numbering = "none"

[[level]]
kind = "recitals"
key = "recitals"
pattern = '^(?:#{1,6}\s*)?(?P<title>(?:Whereas|WHEREAS)\s*:?)$'
title = "Whereas:"
section_type = "recital"
depth = 0
closed = true
max = 1
numbering = "none"

[[level]]
kind = "recital"
key = "rec"
pattern = '^\((?P<num>\d+)\)\s*|^(?P<num2>\d+)\.\s+(?:\|\s*)?'
rest = "body"
title = "Recital {num}"
within = ["recitals"]

[[level]]
kind = "enacting_formula"
key = "formula"
pattern = '^(?:HAVE ADOPTED|HAS ADOPTED|HAVE DECIDED|HAS DECIDED|BE IT ENACTED)\b'
rest = "line"
title = "Enacting formula"
section_type = "preamble"
depth = 0
closed = true
max = 1
numbering = "none"

[[level]]
kind = "part"
key = "part"
pattern = '^(?:#{1,6}\s*)?(?:PART|Part)\s+(?P<num>[IVXLCDM]+|\d+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Part {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
numbering = "document"
depth = 1

[[level]]
kind = "title"
key = "title"
pattern = '^(?:#{1,6}\s*)?(?:TITLE|Title)\s+(?P<num>[IVXLCDM]+|\d+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Title {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
numbering = "document"
depth = 1

[[level]]
kind = "chapter"
key = "ch"
pattern = '^(?:#{1,6}\s*)?(?:CHAPTER|Chapter)\s+(?P<num>[IVXLCDM]+|\d+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Chapter {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
numbering = "document"
depth = 2

[[level]]
kind = "section"
key = "sec"
pattern = '^(?:#{1,6}\s*)?(?:SECTION|Section)\s+(?P<num>\d+|[IVXLCDM]+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Section {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
depth = 3

# `### Article 5 …`, `### Art. 5a …`; a plain line `Article 5`, `Article 5. Title`,
# `ARTICLE 34-1 — Title`, or `Article 5 (repealed)` (the bracket is the title).
[[level]]
kind = "article"
key = "art"
pattern = '^#{1,6}\s*(?:ARTICLE|Article|ART\.?|Art\.?)\s+(?P<num>\d+(?:-\d+)*[a-z]?(?:[\s-]*(?i:bis|ter|quater|quinquies|sexies|septies|octies|nonies|novies|decies)\b)?|[IVXLCDM]+)\b\s*[.:\-–—]?\s*|^(?:ARTICLE|Article)\s+(?P<num2>\d+(?:-\d+)*[a-z]?(?:[\s-]*(?i:bis|ter|quater|quinquies|sexies|septies|octies|nonies|novies|decies)\b)?|[IVXLCDM]+)(?:\s*[.:]?$|\s*[.:\-–—]\s+)|^(?:ARTICLE|Article)\s+(?P<num3>\d+(?:-\d+)*[a-z]?(?:[\s-]*(?i:bis|ter|quater|quinquies|sexies|septies|octies|nonies|novies|decies)\b)?|[IVXLCDM]+)\s+(?P<title>[(\[][^()\[\]]*[)\]])$'
title = "Article {num}"
title_line = '^#{1,6}\s+(?P<title>\S.*)$'
numbering = "document"
depth = 4

[[level]]
kind = "amendment"
key = "amdt"
pattern = '^#{1,6}\s*(?:AMENDMENT|Amendment)\s+(?P<num>\d+|[IVXLCDM]+)\b\s*[.:\-–—]?\s*|^(?:AMENDMENT|Amendment)\s+(?P<num2>\d+|[IVXLCDM]+)(?:\s*[.:]?$|\s*[.:\-–—]\s+)'
title = "Amendment {num}"
title_line = '^#{1,6}\s+(?P<title>\S.*)$'
section_type = "amendment"
numbering = "document"
depth = 4

[[level]]
kind = "paragraph"
key = "para"
pattern = '^\((?P<num>\d+)\)\s*|^(?P<num2>\d+)\.(?:\s+\|)?\s+'
rest = "body"
title = "Paragraph {num}"
within = ["article", "amendment"]

# Points are `(a)`, `a)` or, in the Official Journal's Markdown, `a. |` (sometimes after a
# stray `:`).
[[level]]
kind = "point"
key = "pt"
pattern = '^:?\s*\((?P<num>[a-z])\)\s*|^:?\s*(?P<num2>[a-z])(?:\)\s+|\.\s*\|\s*)'
rest = "body"
title = "Point ({num})"
within = ["paragraph", "article", "amendment"]

[[level]]
kind = "annex"
key = "annex"
pattern = '^(?:#{1,6}\s*)?(?:ANNEX|Annex)(?:\s+(?P<num>[IVXLCDM]+|\d+))?(?:\s*[.:\-–—]\s*|\s*$)'
title = "Annex {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
section_type = "annex"
numbering = "document"
depth = 0

[[level]]
kind = "closing"
key = "closing"
pattern = '^(?:Done at|DONE AT)\b'
rest = "line"
title = "Closing formula"
section_type = "final"
depth = 0
closed = true
max = 1
numbering = "none"
"#;

/// EU acts as text extracted from the Official Journal's PDF: en-legal's levels, plus page
/// furniture found by repetition, footnote blocks at the foot of pages, headings only where a
/// sentence has ended, letter-spaced headings read closed up, and an article's title on the
/// line after `Article N`.
pub(crate) const EU_OJ: &str = r#"
name = "eu-oj"
description = "EU acts as text extracted from the Official Journal PDF: page headers and footers, footnotes, wrapped lines, letter-spaced headings, numbers alone on a line"
join = "space"
# The journal's running header, alone on its lines as PDF extraction leaves it (a clean copy
# in Markdown keeps it on one line with `|` and is read by en-legal).
detect = ['^Official Journal of the European Union$', '^[LC]\s+\d+/\d+$']
# `( 1 )`: a footnote reference as PDF extraction writes a superscript.
strip = ['\s*\(\s\d{1,3}\s\)', '\s*\[\^[^\]]+\]', '\s*<a name="[^"]*"></a>', '\s+\|$', '^>\s?']
# A unit with no text at all is a repealed provision; `repeal_markers` is left to its default
# list (`(repealed)`, `[Repealed]`, `Repealed.`, … see docs/profiles.md).
empty_body = "repealed"

[layout]
# Page headers and footers are found by repetition, footnotes at the foot of a page by their
# form: `(1) OJ C 229, 31.7.2012, p. 90.`
furniture = true
footnote = '^\(\d{1,3}\)\s'
footnote_contains = '\bOJ\s+[LC]\s+\d|Official Journal'
letter_spacing = true

[toc]
start = '^(?:#{1,6}\s*)?(?:Table of Contents|TABLE OF CONTENTS|Contents|CONTENTS)$'

[[skip]]
reason = "page header"
start = '^\d{1,2}\.\d{1,2}\.\d{4}\s+\|.*\|\s*L\s*\d+/\d+$'

[[skip]]
reason = "page footer"
start = '^(?:Page|PAGE)\s+\d+(?:\s+of\s+\d+)?$'

[[skip]]
reason = "page number"
start = '^-\s*\d+\s*-$'

[[skip]]
reason = "annotation"
start = '^@@@'
end = '^@@@$'

[[skip]]
reason = "anchor"
start = '^<a name="[^"]*"></a>$'

[[skip]]
reason = "footnote"
start = '^\[\^[^\]]+\]:'

[[level]]
kind = "preamble"
key = "preamble"
pattern = '^(?:#{1,6}\s*)?(?P<title>PREAMBLE|Preamble)\s*:?$'
title = "Preamble"
section_type = "preamble"
depth = 0
closed = true
max = 1
numbering = "none"

# An EU act has no "Preamble" heading: its citations begin with the institutions that adopt
# it, right after the title. Only the first unit of a document can start this way.
[[level]]
kind = "preamble"
key = "preamble"
pattern = '^(?:THE EUROPEAN PARLIAMENT|THE COUNCIL|THE EUROPEAN COMMISSION)\b'
rest = "line"
title = "Preamble"
section_type = "preamble"
depth = 0
closed = true
max = 1
first_only = true
numbering = "none"

[[level]]
kind = "preamble"
key = "preamble"
pattern = '^>'
rest = "line"
title = "Preamble"
section_type = "preamble"
depth = 0
closed = true
max = 1
first_only = true
numbering = "none"

[[level]]
kind = "recitals"
key = "recitals"
pattern = '^(?:#{1,6}\s*)?(?P<title>(?:Whereas|WHEREAS)\s*:?)$'
title = "Whereas:"
section_type = "recital"
depth = 0
closed = true
max = 1
numbering = "none"

[[level]]
kind = "recital"
key = "rec"
pattern = '^\((?P<num>\d+)\)\s*|^(?P<num2>\d+)\.\s+(?:\|\s*)?'
rest = "body"
title = "Recital {num}"
within = ["recitals"]

[[level]]
kind = "enacting_formula"
key = "formula"
pattern = '^(?:HAVE ADOPTED|HAS ADOPTED|HAVE DECIDED|HAS DECIDED|BE IT ENACTED)\b'
rest = "line"
title = "Enacting formula"
section_type = "preamble"
depth = 0
closed = true
max = 1
numbering = "none"

[[level]]
kind = "part"
context = "sentence"
key = "part"
pattern = '^(?:#{1,6}\s*)?(?:PART|Part)\s+(?P<num>[IVXLCDM]+|\d+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Part {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
title_wraps = true
numbering = "document"
depth = 1

[[level]]
kind = "title"
context = "sentence"
key = "title"
pattern = '^(?:#{1,6}\s*)?(?:TITLE|Title)\s+(?P<num>[IVXLCDM]+|\d+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Title {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
title_wraps = true
numbering = "document"
depth = 1

[[level]]
kind = "chapter"
context = "sentence"
key = "ch"
pattern = '^(?:#{1,6}\s*)?(?:CHAPTER|Chapter)\s+(?P<num>[IVXLCDM]+|\d+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Chapter {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
title_wraps = true
numbering = "document"
depth = 2

[[level]]
kind = "section"
context = "sentence"
key = "sec"
pattern = '^(?:#{1,6}\s*)?(?:SECTION|Section)\s+(?P<num>\d+|[IVXLCDM]+)(?:\s*[.:\-–—]\s*|\s*$)'
title = "Section {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
title_wraps = true
depth = 3

# `### Article 5 …`, `### Art. 5a …`; a plain line `Article 5`, `Article 5. Title`,
# `ARTICLE 34-1 — Title`, or `Article 5 (repealed)` (the bracket is the title).
[[level]]
kind = "article"
context = "sentence"
key = "art"
pattern = '^#{1,6}\s*(?:ARTICLE|Article|ART\.?|Art\.?)\s+(?P<num>\d+(?:-\d+)*[a-z]?(?:[\s-]*(?i:bis|ter|quater|quinquies|sexies|septies|octies|nonies|novies|decies)\b)?|[IVXLCDM]+)\b\s*[.:\-–—]?\s*|^(?:ARTICLE|Article)\s+(?P<num2>\d+(?:-\d+)*[a-z]?(?:[\s-]*(?i:bis|ter|quater|quinquies|sexies|septies|octies|nonies|novies|decies)\b)?|[IVXLCDM]+)(?:\s*[.:]?$|\s*[.:\-–—]\s+)|^(?:ARTICLE|Article)\s+(?P<num3>\d+(?:-\d+)*[a-z]?(?:[\s-]*(?i:bis|ter|quater|quinquies|sexies|septies|octies|nonies|novies|decies)\b)?|[IVXLCDM]+)\s+(?P<title>[(\[][^()\[\]]*[)\]])$'
title = "Article {num}"
# `Article 5` with its title on the next line: a line that starts with a capital letter and
# does not end a sentence.
title_line = '^(?:#{1,6}\s+)?(?P<title>\p{Lu}.{0,200}[^.;:,])$'
title_wraps = true
numbering = "document"
depth = 4

[[level]]
kind = "amendment"
context = "sentence"
key = "amdt"
pattern = '^#{1,6}\s*(?:AMENDMENT|Amendment)\s+(?P<num>\d+|[IVXLCDM]+)\b\s*[.:\-–—]?\s*|^(?:AMENDMENT|Amendment)\s+(?P<num2>\d+|[IVXLCDM]+)(?:\s*[.:]?$|\s*[.:\-–—]\s+)'
title = "Amendment {num}"
title_line = '^#{1,6}\s+(?P<title>\S.*)$'
section_type = "amendment"
numbering = "document"
depth = 4

[[level]]
kind = "paragraph"
key = "para"
pattern = '^\((?P<num>\d+)\)\s*|^(?P<num2>\d+)\.(?:\s+\|)?\s+'
rest = "body"
title = "Paragraph {num}"
within = ["article", "amendment"]

# Points are `(a)`, `a)` or, in the Official Journal's Markdown, `a. |` (sometimes after a
# stray `:`).
[[level]]
kind = "point"
key = "pt"
pattern = '^:?\s*\((?P<num>[a-z])\)\s*|^:?\s*(?P<num2>[a-z])(?:\)\s+|\.\s*\|\s*)'
rest = "body"
title = "Point ({num})"
within = ["paragraph", "article", "amendment"]

[[level]]
kind = "annex"
context = "sentence"
key = "annex"
pattern = '^(?:#{1,6}\s*)?(?:ANNEX|Annex)(?:\s+(?P<num>[IVXLCDM]+|\d+))?(?:\s*[.:\-–—]\s*|\s*$)'
title = "Annex {num}"
title_line = '^[^#>@<|\[(\d].{0,150}[^.;:,]$'
title_wraps = true
section_type = "annex"
numbering = "document"
depth = 0

[[level]]
kind = "closing"
key = "closing"
pattern = '^(?:Done at|DONE AT)\b'
rest = "line"
title = "Closing formula"
section_type = "final"
depth = 0
closed = true
max = 1
numbering = "none"
"#;

/// Plain Markdown: every ATX heading (`#` … `######`) opens a unit; deeper nest under shallower.
/// A heading that begins with a legal designation and a number (`### Art 12a`, `## Chapter IV`,
/// `### § 7`) is keyed by them (`art-12a`, `ch-4`, `par-7`); any other keeps a positional key
/// (`h2-3`).
pub(crate) const MARKDOWN: &str = r#"
name = "markdown"
description = "Plain Markdown: each # … ###### heading opens a section; deeper headings nest; Art 12a, § 7, Chapter IV … key by their number"
join = "newline"
detect = ['^#{1,6}\s+\S']
detect_min = 1
empty_body = "repealed"

[[level]]
kind = "section"
key = "h1"
pattern = '^#\s+'
title = "Section"
numbering = "none"
designations = true

[[level]]
kind = "section"
key = "h2"
pattern = '^##\s+'
title = "Section"
numbering = "none"
designations = true

[[level]]
kind = "section"
key = "h3"
pattern = '^###\s+'
title = "Section"
numbering = "none"
designations = true

[[level]]
kind = "section"
key = "h4"
pattern = '^####\s+'
title = "Section"
numbering = "none"
designations = true

[[level]]
kind = "section"
key = "h5"
pattern = '^#####\s+'
title = "Section"
numbering = "none"
designations = true

[[level]]
kind = "section"
key = "h6"
pattern = '^######\s+'
title = "Section"
numbering = "none"
designations = true
"#;

/// Names and TOML of the built-ins, in detection order: the most specific grammar first.
pub(crate) const BUILTINS: [(&str, &str); 4] = [
    ("vn-legal", VN_LEGAL),
    ("eu-oj", EU_OJ),
    ("en-legal", EN_LEGAL),
    ("markdown", MARKDOWN),
];

/// Just the names, in the same order.
pub(crate) const NAMES: [&str; 4] = ["vn-legal", "eu-oj", "en-legal", "markdown"];
