//! The review as one self-contained HTML page: inline CSS and a small inline script, no
//! network and no external assets, so it opens from disk, prints, and hashes to the same sha
//! wherever it is written.
//!
//! Every value from a document is escaped (`& < > " '`, control characters shown as `\u{..}`):
//! bodies hold raw HTML (the GDPR's Article 8 has an `<ol>`), and the page must show it, not
//! run it. Readable without the script (a first version's units are open, the change list is
//! plain) and in print (everything expanded, controls hidden). For a headless browser: a
//! `#q=<urlencoded text>` fragment (or `?q=`) searches on load; `#search-count`,
//! `#unit-count` and `#count-<change kind>` carry their numbers in `data-count`; the body gets
//! `data-ready="1"` once the script has run. The first hit is scrolled into view, unless the
//! URL adds `&scroll=0` (`#q=Article%2017&scroll=0`): headless Chromium's `--screenshot` paints
//! nothing of a page scrolled on load. Kept fast for 10,000 units: one array of the
//! unit elements, texts read lazily on the first search, bodies laid out only when visible
//! (`content-visibility`).

use std::fmt::Write as _;

use super::{ForceEntry, Review, TreeEntry, WarningKind};
use crate::change::ChangeKind;
use crate::in_force::UnitDiff;
use crate::text::{escape_controls, escape_controls_keep_newlines, WordChange};

/// Above this many units a first version's tree starts collapsed (see [`tree`]).
pub(crate) const OPEN_UNITS: usize = 2_000;

const CSS: &str = r#"
:root{--fg:#1b1b1b;--mut:#5a5a5a;--bd:#d0d0d0;--add:#e6ffec;--del:#ffebe9;--hit:#fff3b0}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0 auto;max-width:1100px;padding:1em 1.5em 4em}
h1{font-size:1.5em;margin:.2em 0 .6em}h2{font-size:1.2em;border-bottom:1px solid var(--bd);margin-top:1.8em}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid var(--bd);padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;font-weight:600}.hdr td{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.controls{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--bd);padding:.5em 0;display:flex;flex-wrap:wrap;gap:.6em;align-items:center}
.controls input[type=search]{min-width:18em;padding:.25em}
#tree details{margin:.15em 0;padding-left:.9em;border-left:2px solid #eee}
#tree summary{cursor:pointer;padding:.1em 0}
#tree .hit>summary{background:var(--hit)}
#tree .off>summary,#tree .off>.b{display:none}
#tree details.off{border-left-color:transparent}
.key,summary>a{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;text-decoration:none}
.ln{color:var(--mut);font-size:.85em}
.ti{font-weight:600}
.ck{font-size:.75em;padding:0 .35em;border-radius:.6em;border:1px solid var(--bd)}
.ck-added{background:var(--add)}.ck-removed{background:var(--del)}.ck-changed,.ck-moved{background:#fff8c5}
.wk{font-size:.75em;color:#9a3412}
.b{white-space:pre-wrap;margin:.2em 0 .5em .2em;padding:.3em .6em;background:#fafafa;border:1px solid #eee;content-visibility:auto;contain-intrinsic-size:auto 4em}
.b.empty{color:var(--mut);font-style:italic}
.chg{border:1px solid var(--bd);margin:.6em 0;padding:.3em .7em}
.chg.off{display:none}
.diff{white-space:pre-wrap;margin:.3em 0}
ins{background:#abf2bc;text-decoration:none}del{background:#ffb3ad}
tr.off{display:none}
.mut{color:var(--mut)}
@media print{
 .controls,.noprint{display:none!important}
 #tree details,#tree .off>summary,#tree .off>.b{display:block}
 details>*{display:block}
 .b{content-visibility:visible}
 .chg.off,tr.off{display:block}
 tr.off{display:table-row}
 a{color:inherit;text-decoration:none}
}
"#;

const SCRIPT: &str = r#"
(function(){
var d=document,units=[].slice.call(d.querySelectorAll('#tree details')),texts=new Array(units.length);
var rows=[].slice.call(d.querySelectorAll('.chg[data-k],tr[data-k],tr[data-w]'));
var q=d.getElementById('q'),fk=d.getElementById('fk'),fw=d.getElementById('fw'),sc=d.getElementById('search-count');
function own(u){var s='';for(var c=u.firstElementChild;c;c=c.nextElementSibling){if(c.tagName!=='DETAILS')s+=c.textContent+'\n';}return s.toLowerCase();}
function up(u){for(var p=u;p&&p.tagName==='DETAILS';p=p.parentElement&&p.parentElement.closest('details'))p.open=true;}
function has(list,w){return (' '+(list||'')+' ').indexOf(' '+w+' ')>=0;}
function apply(scroll){
 var needle=q.value.trim().toLowerCase(),k=fk.value,w=fw.value,active=!!(needle||k||w),n=0,first=null;
 for(var i=0;i<units.length;i++){
  var u=units[i],ok=true,hit=false;
  if(k&&u.getAttribute('data-k')!==k)ok=false;
  if(ok&&w&&!(w==='any'?u.hasAttribute('data-w'):has(u.getAttribute('data-w'),w)))ok=false;
  if(ok&&needle){if(texts[i]===undefined)texts[i]=own(u);hit=texts[i].indexOf(needle)>=0;ok=hit;}
  u.classList.toggle('off',active&&!ok);u.classList.toggle('hit',hit);
  if(active&&ok){if(!first)first=u;up(u);}
  if(hit)n++;
 }
 for(var j=0;j<rows.length;j++){var r=rows[j],off=false;
  if(k&&r.hasAttribute('data-k')&&r.getAttribute('data-k')!==k)off=true;
  if(w&&w!=='any'&&r.hasAttribute('data-w')&&r.getAttribute('data-w')!==w)off=true;
  r.classList.toggle('off',off);}
 sc.setAttribute('data-count',String(n));
 sc.textContent=needle?(n+(n===1?' unit matches':' units match')):'';
 if(scroll&&first&&!noScroll)first.scrollIntoView();
}
var noScroll=false;
function param(s,name){var m=new RegExp('(?:^|[?#&])'+name+'=([^&]*)').exec(s);if(!m)return null;try{return decodeURIComponent(m[1].replace(/\+/g,' '));}catch(e){return m[1];}}
function fromUrl(){
 var h=location.hash,v=null;
 if(h.indexOf('#q=')===0)v=param(h,'q');
 else v=param(location.search,'q');
 noScroll=param(h,'scroll')==='0'||param(location.search,'scroll')==='0';
 if(v!==null){q.value=v;return true;}
 if(h.indexOf('#u-')===0){var t=d.getElementById(h.slice(1));if(t){up(t);t.scrollIntoView();}}
 return false;
}
var timer=null;
q.addEventListener('input',function(){noScroll=false;clearTimeout(timer);timer=setTimeout(function(){apply(true);},150);});
fk.addEventListener('change',function(){apply(true);});
fw.addEventListener('change',function(){apply(true);});
d.getElementById('expand').addEventListener('click',function(){for(var i=0;i<units.length;i++)units[i].open=true;});
d.getElementById('collapse').addEventListener('click',function(){for(var i=0;i<units.length;i++)units[i].open=false;});
window.addEventListener('hashchange',function(){if(fromUrl())apply(true);});
window.addEventListener('beforeprint',function(){for(var i=0;i<units.length;i++)units[i].open=true;});
d.getElementById('controls').hidden=false;
if(fromUrl())apply(true);
d.body.setAttribute('data-ready','1');
})();
"#;

/// Escapes `s` for HTML text or an attribute value (`& < > " '`), control characters first
/// written as `\u{..}` (newlines kept when `keep_newlines`).
fn esc(out: &mut String, s: &str, keep_newlines: bool) {
    let s = if keep_newlines {
        escape_controls_keep_newlines(s)
    } else {
        escape_controls(s)
    };
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

/// The element id of a unit: `u-` and its key, every byte outside `[A-Za-z0-9.~/-]` written
/// `_XX` (hex), so the id is a valid fragment and two keys never share one. Parser keys
/// (`ch-2/art-8`) are kept as they are.
pub(crate) fn anchor(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    out.push_str("u-");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'~' | b'/' | b'-') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "_{b:02X}");
        }
    }
    out
}

pub(super) fn render(r: &Review) -> String {
    let body_bytes: usize = r.tree.iter().map(|t| t.unit.body().len() + 300).sum();
    let mut o = String::with_capacity(body_bytes + 64 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<meta name=\"generator\" content=\"cutter review\">\n<title>");
    esc(&mut o, &r.title, false);
    o.push_str("</title>\n<style>");
    o.push_str(CSS);
    o.push_str("</style></head>\n<body>\n<h1>");
    esc(&mut o, &r.title, false);
    o.push_str("</h1>\n<table class=\"hdr\">\n");
    for (label, value) in &r.header {
        o.push_str("<tr><th>");
        esc(&mut o, label, false);
        o.push_str("</th><td>");
        esc(&mut o, value, false);
        o.push_str("</td></tr>\n");
    }
    o.push_str("</table>\n");
    controls(&mut o, r);
    counts(&mut o, r);
    if let Some(force) = &r.in_force {
        in_force(&mut o, r, force);
    }
    if !r.first_version {
        changes(&mut o, &r.changes);
    }
    tree(&mut o, r);
    coverage(&mut o, r);
    parse_warnings(&mut o, r);
    warnings(&mut o, r);
    o.push_str("<script>");
    o.push_str(SCRIPT);
    o.push_str("</script>\n</body></html>\n");
    o
}

/// Search and filters; hidden until the script shows them (they do nothing without it).
fn controls(o: &mut String, r: &Review) {
    o.push_str("<nav class=\"controls\" id=\"controls\" hidden>\n<input type=\"search\" id=\"q\" placeholder=\"Search units (key, title, text)\" aria-label=\"Search units\">\n<span id=\"search-count\" data-count=\"0\"></span>\n<label>Change <select id=\"fk\"><option value=\"\">all</option>");
    for kind in ChangeKind::ALL {
        let _ = write!(
            o,
            "<option value=\"{0}\">{0} ({1})</option>",
            kind.name(),
            r.counts.get(kind)
        );
    }
    o.push_str(
        "</select></label>\n<label>Warning <select id=\"fw\"><option value=\"\">all units</option>",
    );
    let _ = write!(
        o,
        "<option value=\"any\">any warning ({})</option>",
        r.warnings.len()
    );
    let counts = r.warning_counts();
    for kind in WarningKind::ALL {
        let _ = write!(
            o,
            "<option value=\"{0}\">{0} ({1})</option>",
            kind.id(),
            counts.get(&kind).copied().unwrap_or(0)
        );
    }
    o.push_str("</select></label>\n<button type=\"button\" id=\"expand\">Expand all</button><button type=\"button\" id=\"collapse\">Collapse all</button>\n</nav>\n");
}

fn counts(o: &mut String, r: &Review) {
    let _ = write!(
        o,
        "<section id=\"counts\"><h2>Counts</h2>\n<p>Units in the plan: <strong id=\"unit-count\" data-count=\"{0}\">{0}</strong>{1}</p>\n<table><tr><th>Change</th><th>Units</th></tr>\n",
        r.tree.len(),
        if r.first_version {
            " — a first version: every unit is new"
        } else {
            ""
        }
    );
    for kind in [
        ChangeKind::Added,
        ChangeKind::Changed,
        ChangeKind::Removed,
        ChangeKind::Moved,
        ChangeKind::Unchanged,
    ] {
        let n = r.counts.get(kind);
        let _ = writeln!(
            o,
            "<tr><td>{0}</td><td class=\"n\" id=\"count-{0}\" data-count=\"{n}\">{n}</td></tr>",
            kind.name()
        );
    }
    o.push_str("</table>\n<table><tr><th>Unit kind</th><th>Units</th></tr>\n");
    for (kind, n) in &r.kinds {
        o.push_str("<tr><td>");
        esc(o, kind, false);
        let _ = writeln!(o, "</td><td class=\"n\">{n}</td></tr>");
    }
    o.push_str("</table>\n<table><tr><th>Warning</th><th>Found</th><th>What to do</th></tr>\n");
    let counts = r.warning_counts();
    for kind in WarningKind::ALL {
        let n = counts.get(&kind).copied().unwrap_or(0);
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"n\" id=\"warn-{}\" data-count=\"{n}\">{n}</td><td>{}</td></tr>",
            kind.id(),
            kind.id(),
            kind.hint()
        );
    }
    o.push_str("</table></section>\n");
}

fn in_force(o: &mut String, r: &Review, force: &[ForceEntry]) {
    o.push_str("<section id=\"in-force\"><h2>What comes into force</h2>\n");
    if r.first_version {
        let _ = writeln!(
            o,
            "<p>A first version: every unit of the plan ({}) comes into force at version 1; nothing is superseded or retired.</p>",
            r.tree.len()
        );
    } else if force.is_empty() {
        o.push_str(
            "<p>Nothing changes: no unit comes into force, none is superseded or retired.</p>\n",
        );
    } else {
        o.push_str("<table><tr><th>Unit</th><th>Change</th><th>Comes into force</th><th>Superseded or retired</th></tr>\n");
        for f in force {
            let a = anchor(&f.key);
            let _ = write!(o, "<tr data-k=\"{}\"><td>", f.change.name());
            if f.change == ChangeKind::Removed {
                esc(o, &f.key, false);
            } else {
                let _ = write!(o, "<a class=\"key\" href=\"#{a}\">");
                esc(o, &f.key, false);
                o.push_str("</a>");
            }
            let _ = write!(o, "</td><td>{}</td><td>", f.change.name());
            match f.comes_in {
                Some(v) => {
                    let _ = write!(o, "version {v}");
                }
                None => o.push('—'),
            }
            o.push_str("</td><td>");
            match (f.change, f.goes_out) {
                (ChangeKind::Removed, Some(v)) => {
                    let _ = write!(o, "version {v} retired");
                }
                (_, Some(v)) => {
                    let _ = write!(o, "version {v} superseded");
                }
                (_, None) => o.push('—'),
            }
            o.push_str("</td></tr>\n");
        }
        o.push_str("</table>\n");
    }
    o.push_str("</section>\n");
}

fn diff(o: &mut String, changes: &[WordChange]) {
    o.push_str("<div class=\"diff\">");
    for c in changes {
        match c {
            WordChange::Same(t) => esc(o, t, true),
            WordChange::Removed(t) => {
                o.push_str("<del>");
                esc(o, t, true);
                o.push_str("</del>");
            }
            WordChange::Added(t) => {
                o.push_str("<ins>");
                esc(o, t, true);
                o.push_str("</ins>");
            }
        }
    }
    o.push_str("</div>");
}

fn changes(o: &mut String, changes: &[UnitDiff]) {
    o.push_str("<section id=\"changes\"><h2>Changes against what is enacted</h2>\n");
    if changes.is_empty() {
        o.push_str("<p>No unit changes.</p>\n");
    }
    for c in changes {
        let a = anchor(&c.key);
        let _ = write!(
            o,
            "<div class=\"chg\" data-k=\"{0}\" id=\"c-{1}\"><div><span class=\"ck ck-{0}\">{0}</span> ",
            c.kind.name(),
            &a[2..]
        );
        if c.kind == ChangeKind::Removed {
            o.push_str("<span class=\"key\">");
            esc(o, &c.key, false);
            o.push_str("</span>");
        } else {
            let _ = write!(o, "<a class=\"key\" href=\"#{a}\">");
            esc(o, &c.key, false);
            o.push_str("</a>");
        }
        o.push_str(" <span class=\"mut\">");
        match (c.from_version, c.to_version) {
            (Some(f), Some(t)) => {
                let _ = write!(o, "version {f} → {t}");
            }
            (None, Some(t)) => {
                let _ = write!(o, "new, version {t}");
            }
            (Some(f), None) => {
                let _ = write!(o, "version {f} retired");
            }
            (None, None) => {}
        }
        if !c.fields.is_empty() {
            o.push_str("; differs in ");
            esc(o, &c.fields.join(", "), false);
        }
        if let Some((from, to)) = &c.status {
            let _ = write!(o, "; status {from} → {to}");
        }
        if let Some((from, to)) = &c.place {
            o.push_str("; moved from ");
            esc(o, from.parent.as_deref().unwrap_or("(top)"), false);
            let _ = write!(o, " #{} to ", from.ordinal);
            esc(o, to.parent.as_deref().unwrap_or("(top)"), false);
            let _ = write!(o, " #{}", to.ordinal);
        }
        o.push_str("</span></div>\n");
        if let Some(d) = &c.title_diff {
            o.push_str("<div class=\"mut\">Title</div>");
            diff(o, d);
        }
        if let Some(d) = &c.body_diff {
            o.push_str("<div class=\"mut\">Text</div>");
            diff(o, d);
        }
        o.push_str("</div>\n");
    }
    o.push_str("</section>\n");
}

fn tree(o: &mut String, r: &Review) {
    o.push_str("<section id=\"tree\"><h2>Units</h2>\n");
    if r.first_version && r.tree.len() <= OPEN_UNITS {
        o.push_str("<p class=\"mut\">Every unit with its text, as it will be written.</p>\n");
    } else if r.first_version {
        let _ = writeln!(
            o,
            "<p class=\"mut\">Every unit with its text, as it will be written (more than {OPEN_UNITS} units: collapsed; open a unit, search, filter, or expand all).</p>"
        );
    } else {
        o.push_str("<p class=\"mut\">The whole new text, each unit marked with its change (collapsed: open a unit, search, or filter).</p>\n");
    }
    // A first version is shown open, so it reads without the script; a large one starts
    // collapsed, since a browser lays out every open unit's text before the first paint.
    let expanded = r.first_version && r.tree.len() <= OPEN_UNITS;
    let mut open = 0usize;
    for t in &r.tree {
        while open > t.depth {
            o.push_str("</details>\n");
            open -= 1;
        }
        unit(o, t, expanded, r.first_version);
        open += 1;
    }
    for _ in 0..open {
        o.push_str("</details>\n");
    }
    o.push_str("</section>\n");
}

fn unit(o: &mut String, t: &TreeEntry, expanded: bool, first_version: bool) {
    let u = &t.unit;
    let a = anchor(u.key());
    let _ = write!(o, "<details id=\"{a}\" data-k=\"{}\"", t.change.name());
    if !t.warnings.is_empty() {
        o.push_str(" data-w=\"");
        for (i, w) in t.warnings.iter().enumerate() {
            if i > 0 {
                o.push(' ');
            }
            o.push_str(w.id());
        }
        o.push('"');
    }
    if expanded {
        o.push_str(" open");
    }
    let _ = write!(o, "><summary><a href=\"#{a}\">");
    esc(o, u.key(), false);
    o.push_str("</a> <span class=\"ti\">");
    esc(o, u.title(), false);
    o.push_str("</span>");
    // A first version's units are all new (the page says so once).
    if !first_version {
        let _ = write!(o, " <span class=\"ck ck-{0}\">{0}</span>", t.change.name());
    }
    if u.status() == crate::plan::ProvisionStatus::Repealed {
        o.push_str(" <span class=\"ck\">repealed</span>");
    }
    if !t.warnings.is_empty() {
        o.push_str(" <span class=\"wk\">⚠ ");
        for (i, w) in t.warnings.iter().enumerate() {
            if i > 0 {
                o.push_str(", ");
            }
            o.push_str(w.id());
        }
        o.push_str("</span>");
    }
    // Kind and lines share one element: at 10,000 units every element per unit counts.
    o.push_str(" <span class=\"ln\">");
    esc(o, u.unit_kind(), false);
    // The section type is signed with the unit (a normative unit turned informative is a
    // change the approver must see).
    o.push_str(" · ");
    esc(o, u.section_type(), false);
    if u.line_start() == u.line_end() {
        let _ = write!(o, ", line {}</span></summary>", u.line_start());
    } else {
        let _ = write!(
            o,
            ", lines {}–{}</span></summary>",
            u.line_start(),
            u.line_end()
        );
    }
    if u.body().trim().is_empty() {
        o.push_str("<div class=\"b empty\">(no text)</div>\n");
    } else {
        o.push_str("<div class=\"b\">");
        esc(o, u.body(), true);
        o.push_str("</div>\n");
    }
}

fn coverage(o: &mut String, r: &Review) {
    o.push_str("<section id=\"coverage\"><h2>Coverage: source lines no unit holds</h2>\n");
    if r.uncovered.is_empty() {
        let _ = writeln!(
            o,
            "<p id=\"uncovered\" data-count=\"0\">Every non-blank line of the source ({} lines) is held by a unit.</p>",
            r.source_lines
        );
    } else {
        let _ = writeln!(
            o,
            "<p id=\"uncovered\" data-count=\"{}\">{} run(s) of the source's {} lines are in no unit. Check that nothing of the text is among them.</p>\n<table><tr><th>Lines</th><th>Reason</th><th>Starts with</th></tr>",
            r.uncovered.len(),
            r.uncovered.len(),
            r.source_lines
        );
        for u in &r.uncovered {
            if u.line_start == u.line_end {
                let _ = write!(o, "<tr><td>{}</td><td>", u.line_start);
            } else {
                let _ = write!(o, "<tr><td>{}–{}</td><td>", u.line_start, u.line_end);
            }
            esc(o, &u.reason, false);
            o.push_str("</td><td>");
            esc(o, &u.text_preview, false);
            o.push_str("</td></tr>\n");
        }
        o.push_str("</table>\n");
    }
    o.push_str("</section>\n");
}

/// What the parser decided without stopping the cut (a heading-like line read as body text).
fn parse_warnings(o: &mut String, r: &Review) {
    let _ = writeln!(
        o,
        "<section id=\"parse-warnings\"><h2>Parser warnings</h2>\n<p id=\"parse-warning-count\" data-count=\"{0}\">{0} parser warning(s): lines that look like headings but were read as text, or headings repeated in the source. Check each against the source; <code>cutter plan --strict</code> refuses a document that has any.</p>",
        r.parse_warnings.len()
    );
    if !r.parse_warnings.is_empty() {
        o.push_str("<table><tr><th>Line</th><th>Unit</th><th>Detail</th></tr>\n");
        for w in &r.parse_warnings {
            let _ = write!(o, "<tr><td>{}</td><td>", w.line);
            esc(o, &w.key, false);
            o.push_str("</td><td>");
            esc(o, &w.message, false);
            o.push_str("</td></tr>\n");
        }
        o.push_str("</table>\n");
    }
    o.push_str("</section>\n");
}

fn warnings(o: &mut String, r: &Review) {
    let _ = writeln!(
        o,
        "<section id=\"warnings\"><h2>Warnings</h2>\n<p id=\"warning-count\" data-count=\"{0}\">{0} warning(s). Each is a possible mis-cut to look at; the counts table says what to do about each kind.</p>",
        r.warnings.len()
    );
    if !r.warnings.is_empty() {
        o.push_str("<table><tr><th>Warning</th><th>Unit</th><th>Line</th><th>Detail</th></tr>\n");
        for w in &r.warnings {
            let _ = write!(
                o,
                "<tr data-w=\"{0}\"><td>{0}</td><td><a class=\"key\" href=\"#{1}\">",
                w.kind.id(),
                anchor(&w.key)
            );
            esc(o, &w.key, false);
            let _ = write!(o, "</a></td><td class=\"n\">{}</td><td>", w.line);
            esc(o, &w.detail, false);
            o.push_str("</td></tr>\n");
        }
        o.push_str("</table>\n");
    }
    o.push_str("</section>\n");
}
