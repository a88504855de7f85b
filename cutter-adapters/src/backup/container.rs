//! `cutter.doc-backup.v1`: the plaintext of a per-document backup, several `COPY … TO STDOUT`
//! streams (text format) in one byte stream, written straight into gpg's stdin.
//!
//! ```text
//! cutter.doc-backup.v1\n
//! {"format":…,"run_id":…,"document_id":…,"tables":[{"name":…,"columns":[{"name":…,"type":…}]}]}\n
//! per table, in the header's order:
//!   T <schema.table>\n
//!   D <n>\n <n bytes of COPY text rows>          (any number of chunks)
//!   E <rows> <sha256 of the table's COPY bytes>\n
//! Z\n
//! ```
//!
//! Row counts and hashes come after each table's data because the data is streamed as the
//! server sends it (nothing is buffered, so the plaintext never has to fit in memory). A COPY
//! text row is one line (newlines inside values are escaped as `\n`), so the rows are the
//! newline count. The reader checks the order of the tables against the header, every
//! chunk length, each table's row count and sha256, and that nothing follows `Z`.

use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first line of the plaintext.
pub const DOC_BACKUP_FORMAT: &str = "cutter.doc-backup.v1";

/// The largest chunk a reader accepts: a `D` line claiming more is corruption, not data.
const MAX_CHUNK: usize = 64 * 1024 * 1024;
/// The largest header or marker line a reader accepts.
const MAX_LINE: usize = 1024 * 1024;

/// A column as the header names it: its name and `format_type` of its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// A table of the backup and its columns, in COPY order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    pub name: String,
    pub columns: Vec<Column>,
}

/// The header line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub run_id: String,
    pub document_id: String,
    pub tables: Vec<TableSpec>,
}

/// What one table section held: written into the envelope, checked by every reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    pub table: String,
    pub rows: u64,
    /// sha256 of the table's COPY text, exactly as the server sent it.
    pub sha256: String,
}

/// Writes the container; the caller streams each table's COPY data through [`data`].
///
/// [`data`]: ContainerWriter::data
pub struct ContainerWriter<W: Write> {
    out: W,
    current: Option<(String, u64, Sha256)>,
    done: Vec<TableCount>,
}

impl<W: Write> std::fmt::Debug for ContainerWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerWriter")
            .field("open", &self.current.as_ref().map(|(t, rows, _)| (t, rows)))
            .field("done", &self.done)
            .finish()
    }
}

impl<W: Write> ContainerWriter<W> {
    pub fn start(mut out: W, header: &Header) -> io::Result<Self> {
        let json = serde_json::to_string(header).map_err(io::Error::other)?;
        out.write_all(format!("{DOC_BACKUP_FORMAT}\n{json}\n").as_bytes())?;
        Ok(ContainerWriter {
            out,
            current: None,
            done: Vec::new(),
        })
    }

    pub fn table(&mut self, name: &str) -> io::Result<()> {
        if self.current.is_some() {
            return Err(io::Error::other("a table section is still open"));
        }
        self.out.write_all(format!("T {name}\n").as_bytes())?;
        self.current = Some((name.to_string(), 0, Sha256::new()));
        Ok(())
    }

    pub fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        let Some((_, rows, hasher)) = self.current.as_mut() else {
            return Err(io::Error::other("data outside a table section"));
        };
        if chunk.is_empty() {
            return Ok(());
        }
        *rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        hasher.update(chunk);
        self.out
            .write_all(format!("D {}\n", chunk.len()).as_bytes())?;
        self.out.write_all(chunk)
    }

    pub fn end_table(&mut self) -> io::Result<()> {
        let Some((table, rows, hasher)) = self.current.take() else {
            return Err(io::Error::other("no table section is open"));
        };
        let sha256 = hex::encode(hasher.finalize());
        self.out
            .write_all(format!("E {rows} {sha256}\n").as_bytes())?;
        self.done.push(TableCount {
            table,
            rows,
            sha256,
        });
        Ok(())
    }

    /// Writes the end marker; returns the sink and what each table held.
    pub fn finish(mut self) -> io::Result<(W, Vec<TableCount>)> {
        if self.current.is_some() {
            return Err(io::Error::other("a table section is still open"));
        }
        self.out.write_all(b"Z\n")?;
        self.out.flush()?;
        Ok((self.out, self.done))
    }
}

/// What a reader sees, in order.
#[derive(Debug)]
pub enum Event<'a> {
    /// A table section starts (its spec from the header).
    Table(&'a TableSpec),
    /// COPY text of the current table.
    Data(&'a [u8]),
    /// The current table ended; its rows and sha256 were checked.
    End(&'a TableCount),
}

/// Reads and checks a whole container, calling `on` for every event; returns the header and
/// every table's count. Fails, naming the place, on anything a writer would not produce.
pub fn read_container<R: BufRead>(
    mut input: R,
    mut on: impl FnMut(&Header, Event<'_>) -> Result<(), String>,
) -> Result<(Header, Vec<TableCount>), String> {
    let magic = line(&mut input, "the format line")?;
    if magic != DOC_BACKUP_FORMAT {
        return Err(format!(
            "it does not start with `{DOC_BACKUP_FORMAT}` (it starts with `{}`)",
            magic.chars().take(40).collect::<String>()
        ));
    }
    let header_line = line(&mut input, "the header")?;
    let header: Header =
        serde_json::from_str(&header_line).map_err(|e| format!("read the header: {e}"))?;
    if header.format != DOC_BACKUP_FORMAT {
        return Err(format!(
            "the header's format `{}` is not `{DOC_BACKUP_FORMAT}`",
            header.format
        ));
    }
    let mut counts = Vec::with_capacity(header.tables.len());
    let mut buf = Vec::new();
    for spec in &header.tables {
        let t = line(&mut input, "a table marker")?;
        if t != format!("T {}", spec.name) {
            return Err(format!(
                "expected the section of {}, found `{}`",
                spec.name,
                t.chars().take(80).collect::<String>()
            ));
        }
        on(&header, Event::Table(spec))?;
        let mut rows = 0u64;
        let mut hasher = Sha256::new();
        let end = loop {
            let marker = line(&mut input, "a chunk or end marker")?;
            if let Some(n) = marker.strip_prefix("D ") {
                let n: usize = n
                    .parse()
                    .map_err(|_| format!("bad chunk length `{n}` in {}", spec.name))?;
                if n == 0 || n > MAX_CHUNK {
                    return Err(format!("chunk length {n} in {} is out of range", spec.name));
                }
                buf.resize(n, 0);
                input
                    .read_exact(&mut buf)
                    .map_err(|e| format!("read a chunk of {}: {e}", spec.name))?;
                rows += buf.iter().filter(|b| **b == b'\n').count() as u64;
                hasher.update(&buf);
                on(&header, Event::Data(&buf))?;
            } else if let Some(rest) = marker.strip_prefix("E ") {
                break rest.to_string();
            } else {
                return Err(format!(
                    "expected a chunk or the end of {}, found `{}`",
                    spec.name,
                    marker.chars().take(80).collect::<String>()
                ));
            }
        };
        let sha256 = hex::encode(hasher.finalize());
        let (said_rows, said_sha) = end
            .split_once(' ')
            .ok_or_else(|| format!("bad end marker `E {end}` of {}", spec.name))?;
        if said_rows != rows.to_string() || said_sha != sha256 {
            return Err(format!(
                "{} holds {rows} rows with sha256 {sha256}, its end marker says {said_rows} rows with sha256 {said_sha}",
                spec.name
            ));
        }
        let count = TableCount {
            table: spec.name.clone(),
            rows,
            sha256,
        };
        on(&header, Event::End(&count))?;
        counts.push(count);
    }
    let z = line(&mut input, "the end marker")?;
    if z != "Z" {
        return Err(format!(
            "expected the end marker after the last table, found `{}`",
            z.chars().take(80).collect::<String>()
        ));
    }
    let mut rest = [0u8; 1];
    match input.read(&mut rest) {
        Ok(0) => Ok((header, counts)),
        Ok(_) => Err("bytes follow the end marker".into()),
        Err(e) => Err(format!("read past the end marker: {e}")),
    }
}

/// One `\n`-terminated line, at most [`MAX_LINE`] bytes, as UTF-8.
fn line<R: BufRead>(input: &mut R, what: &str) -> Result<String, String> {
    let mut raw = Vec::new();
    let n = input
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut raw)
        .map_err(|e| format!("read {what}: {e}"))?;
    if n == 0 {
        return Err(format!("it ends before {what} (cut short)"));
    }
    if raw.pop() != Some(b'\n') {
        return Err(format!(
            "{what} is cut short or longer than {MAX_LINE} bytes"
        ));
    }
    String::from_utf8(raw).map_err(|_| format!("{what} is not UTF-8"))
}

/// The envelope's counts against the container's: the same tables, rows and hashes.
pub fn compare_counts(envelope: &[TableCount], found: &[TableCount]) -> Result<(), String> {
    if envelope == found {
        return Ok(());
    }
    let show = |c: &[TableCount]| {
        c.iter()
            .map(|t| format!("{} {} rows", t.table, t.rows))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "the backup holds {} but its envelope says {} (or their hashes differ)",
        show(found),
        show(envelope)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: DOC_BACKUP_FORMAT.into(),
            run_id: "r1".into(),
            document_id: "doc".into(),
            tables: vec![
                TableSpec {
                    name: "public.a".into(),
                    columns: vec![Column {
                        name: "x".into(),
                        type_name: "text".into(),
                    }],
                },
                TableSpec {
                    name: "public.b".into(),
                    columns: vec![],
                },
            ],
        }
    }

    fn written() -> (Vec<u8>, Vec<TableCount>) {
        let mut w = ContainerWriter::start(Vec::new(), &header()).unwrap();
        w.table("public.a").unwrap();
        w.data(b"one\\nline\n").unwrap();
        w.data(b"two\nthree\n").unwrap();
        w.end_table().unwrap();
        w.table("public.b").unwrap();
        w.end_table().unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let (bytes, counts) = written();
        assert_eq!(counts[0].rows, 3);
        assert_eq!(counts[1].rows, 0);
        let mut data = Vec::new();
        let (h, read) = read_container(&bytes[..], |_, e| {
            if let Event::Data(d) = e {
                data.extend_from_slice(d);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(h, header());
        assert_eq!(read, counts);
        assert_eq!(data, b"one\\nline\ntwo\nthree\n");
        assert!(compare_counts(&counts, &read).is_ok());
    }

    #[test]
    fn refuses_every_damage() {
        let (bytes, counts) = written();
        let read = |b: &[u8]| read_container(b, |_, _| Ok(())).map(|_| ());
        // Cut short anywhere.
        for cut in [0, 5, 30, bytes.len() - 10, bytes.len() - 1] {
            assert!(read(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A changed byte in the data breaks its table's hash.
        let mut changed = bytes.clone();
        let at = changed.windows(3).position(|w| w == b"two").unwrap();
        changed[at] = b'T';
        assert!(read(&changed).unwrap_err().contains("sha256"));
        // Bytes after the end marker.
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"x");
        assert!(read(&longer).is_err());
        // Another format.
        assert!(read(b"PGDMP\x01").is_err());
        // An envelope that disagrees.
        let mut other = counts.clone();
        other[0].rows = 2;
        assert!(compare_counts(&other, &counts).is_err());
    }
}
