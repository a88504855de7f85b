//! The OpenPGP packet framing of an encrypted backup, walked in-process to the last byte
//! (no gpg, no keyring needed).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// What the OpenPGP framing of an encrypted backup names.
#[derive(Debug, Default)]
pub(super) struct Framing {
    /// Key ids (16 upper-case hex digits) of its public-key-encrypted session key packets.
    pub(super) key_ids: Vec<String>,
}

/// A packet body's length as its header gives it.
pub(super) enum BodyLen {
    Definite(u64),
    /// A new-format partial body length: this many bytes, then another length.
    Partial(u64),
    /// An old-format indeterminate length: to the end of the file.
    ToEnd,
}

/// A position-tracking reader over the packets of a file of known length.
pub(super) struct Packets {
    pub(super) inner: BufReader<File>,
    pub(super) pos: u64,
    pub(super) len: u64,
}

impl Packets {
    fn byte(&mut self) -> Result<u8, String> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        if (buf.len() as u64) > self.len - self.pos {
            return Err(format!(
                "it is cut short: it ends at byte {} inside a packet",
                self.len
            ));
        }
        self.inner
            .read_exact(buf)
            .map_err(|e| format!("read it at byte {}: {e}", self.pos))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        if n > self.len - self.pos {
            return Err(format!(
                "it is cut short: a packet needs {n} more bytes at byte {}, but {} are left",
                self.pos,
                self.len - self.pos
            ));
        }
        let step = i64::try_from(n).map_err(|_| format!("a packet length of {n} bytes"))?;
        self.inner
            .seek_relative(step)
            .map_err(|e| format!("read it at byte {}: {e}", self.pos))?;
        self.pos += n;
        Ok(())
    }

    /// The body length after a packet tag (RFC 4880 section 4.2, RFC 9580 section 4.2).
    fn length(&mut self, ctb: u8, new_format: bool) -> Result<BodyLen, String> {
        if new_format {
            let o1 = u64::from(self.byte()?);
            return Ok(match o1 {
                0..=191 => BodyLen::Definite(o1),
                192..=223 => {
                    let o2 = u64::from(self.byte()?);
                    BodyLen::Definite(((o1 - 192) << 8) + o2 + 192)
                }
                224..=254 => BodyLen::Partial(1 << (o1 & 0x1f)),
                _ => {
                    let mut b = [0u8; 4];
                    self.fill(&mut b)?;
                    BodyLen::Definite(u64::from(u32::from_be_bytes(b)))
                }
            });
        }
        Ok(match ctb & 0x03 {
            0 => BodyLen::Definite(u64::from(self.byte()?)),
            1 => {
                let mut b = [0u8; 2];
                self.fill(&mut b)?;
                BodyLen::Definite(u64::from(u16::from_be_bytes(b)))
            }
            2 => {
                let mut b = [0u8; 4];
                self.fill(&mut b)?;
                BodyLen::Definite(u64::from(u32::from_be_bytes(b)))
            }
            _ => BodyLen::ToEnd,
        })
    }
}

/// Walks the packet framing of an encrypted backup in-process, from the first byte to the
/// last: one or more session-key packets (at least one public-key one), then exactly one
/// integrity-protected encrypted data packet whose length chain ends at the end of the file.
/// This needs neither gpg nor a keyring, and it is what catches a file cut short without
/// the secret key. It reads headers only; the encrypted bytes are skipped.
pub(super) fn openpgp_framing(path: &Path) -> Result<Framing, String> {
    let file = File::open(path).map_err(|e| format!("open it: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("read its size: {e}"))?
        .len();
    let mut r = Packets {
        inner: BufReader::with_capacity(16 * 1024, file),
        pos: 0,
        len,
    };
    let mut framing = Framing::default();
    let mut public_key_packets = 0usize;
    loop {
        if r.pos == r.len {
            return Err(if r.len == 0 {
                "it is empty".to_string()
            } else {
                "it ends before an encrypted data packet".to_string()
            });
        }
        let at = r.pos;
        let ctb = r.byte()?;
        if ctb & 0x80 == 0 {
            let armor = if at == 0 && ctb == b'-' {
                " (ASCII armor? cutter writes binary OpenPGP)"
            } else {
                ""
            };
            return Err(format!(
                "byte {at} (0x{ctb:02x}) is not an OpenPGP packet header{armor}"
            ));
        }
        let new_format = ctb & 0x40 != 0;
        let tag = if new_format {
            ctb & 0x3f
        } else {
            (ctb >> 2) & 0x0f
        };
        let first = r.length(ctb, new_format)?;
        match tag {
            // Public-key-encrypted session key: read it for the key id.
            1 => {
                let BodyLen::Definite(n) = first else {
                    return Err(format!(
                        "the session key packet at byte {at} has no definite length"
                    ));
                };
                if n > 16 * 1024 {
                    return Err(format!(
                        "the session key packet at byte {at} is {n} bytes long"
                    ));
                }
                let mut body = vec![0u8; n as usize];
                r.fill(&mut body)?;
                framing.key_ids.push(pkesk_key_id(&body, at)?);
                public_key_packets += 1;
            }
            // Symmetric-key session key and marker packets may precede the data.
            3 | 10 => match first {
                BodyLen::Definite(n) => r.skip(n)?,
                _ => {
                    return Err(format!(
                        "the packet at byte {at} (tag {tag}) has no definite length"
                    ))
                }
            },
            // Symmetrically encrypted integrity-protected data (v1 with MDC, v2 AEAD) and
            // GnuPG's OCB-encrypted data.
            18 | 20 => {
                if public_key_packets == 0 {
                    return Err(format!(
                        "the encrypted data packet at byte {at} has no public-key-encrypted session key packet before it"
                    ));
                }
                let version = data_packet_body(&mut r, first)?;
                let known = match tag {
                    18 => matches!(version, Some(1 | 2)),
                    _ => version == Some(1),
                };
                if !known {
                    return Err(format!(
                        "the encrypted data packet at byte {at} (tag {tag}) has unknown version {}",
                        version.map_or("(empty)".to_string(), |v| v.to_string())
                    ));
                }
                if r.pos != r.len {
                    return Err(format!(
                        "{} bytes follow the encrypted data packet that ends at byte {}",
                        r.len - r.pos,
                        r.pos
                    ));
                }
                return Ok(framing);
            }
            9 => {
                return Err(format!(
                    "the data packet at byte {at} is encrypted without integrity protection (tag 9)"
                ))
            }
            other => return Err(format!("unexpected packet tag {other} at byte {at}")),
        }
    }
}

/// Skips an encrypted data packet's body, following its partial-length chain to the end;
/// returns its first byte (the packet version).
pub(super) fn data_packet_body(r: &mut Packets, first: BodyLen) -> Result<Option<u8>, String> {
    let mut version = None;
    let mut len = first;
    loop {
        let (n, more) = match len {
            BodyLen::Definite(n) => (n, false),
            BodyLen::Partial(n) => (n, true),
            BodyLen::ToEnd => (r.len - r.pos, false),
        };
        if n > 0 && version.is_none() {
            version = Some(r.byte()?);
            r.skip(n - 1)?;
        } else {
            r.skip(n)?;
        }
        if !more {
            return Ok(version);
        }
        if r.pos == r.len {
            return Err(format!(
                "it is cut short: the encrypted data packet's length chain is unfinished at byte {}",
                r.pos
            ));
        }
        // Only new-format packets have partial lengths, and every length of the chain is one.
        len = r.length(0xc0, true)?;
    }
}

/// The key id a public-key-encrypted session key packet names (upper-case hex; all zeros
/// for an anonymous recipient). Version 3 carries it; version 6 carries a fingerprint, whose
/// key id is its last 8 bytes for a v4 key and its first 8 for a v6 key.
pub(super) fn pkesk_key_id(body: &[u8], at: u64) -> Result<String, String> {
    let hex_id = |b: &[u8]| hex::encode_upper(b);
    match body {
        // Version, key id (8), public-key algorithm, then the algorithm's fields.
        [3, rest @ ..] if rest.len() >= 9 => Ok(hex_id(&rest[..8])),
        [6, 0, ..] => Ok("0000000000000000".into()),
        [6, count, 4, rest @ ..] if *count == 21 && rest.len() >= 20 => Ok(hex_id(&rest[12..20])),
        [6, count, 6, rest @ ..] if *count == 33 && rest.len() >= 32 => Ok(hex_id(&rest[..8])),
        [v, ..] => Err(format!(
            "the session key packet at byte {at} has version {v}, which this check cannot read"
        )),
        [] => Err(format!("the session key packet at byte {at} is empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A file of `bytes` in a temporary folder, walked.
    fn framing_of(bytes: &[u8]) -> Result<Framing, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("f.gpg");
        fs::write(&path, bytes).map_err(|e| e.to_string())?;
        openpgp_framing(&path)
    }

    #[test]
    fn walks_openpgp_framing_to_the_last_byte() {
        // Old-format PKESK (tag 1, one-byte length 12): v3, key id, algo 18, one byte.
        let mut pkesk = vec![0x84, 11, 3];
        pkesk.extend_from_slice(&[0xA9, 0x75, 0xBB, 0x25, 0xDB, 0xB9, 0xDC, 0xCE]);
        pkesk.extend_from_slice(&[18, 0]);
        // New-format SEIPD (tag 18): a partial chunk of 2^9 bytes, then a final 5 bytes.
        let mut seipd = vec![0xd2, 0xe9, 1];
        seipd.extend([0x55u8; 511]);
        seipd.extend_from_slice(&[5, 0, 0, 0, 0, 0]);
        let whole = [pkesk.clone(), seipd.clone()].concat();
        let found = framing_of(&whole);
        assert_eq!(
            found.map(|f| f.key_ids),
            Ok(vec!["A975BB25DBB9DCCE".to_string()])
        );
        // Cut anywhere, with something after it, or without a session key: refused.
        for cut in [1, 5, pkesk.len() + 1, pkesk.len() + 3, whole.len() - 1] {
            let e = framing_of(&whole[..cut]).err().unwrap_or_default();
            assert!(e.contains("cut short") || e.contains("ends"), "{cut}: {e}");
        }
        let trailing = [whole.clone(), vec![0x00]].concat();
        assert!(framing_of(&trailing).is_err_and(|e| e.contains("follow")));
        assert!(framing_of(&seipd).is_err_and(|e| e.contains("no public-key")));
        assert!(framing_of(b"-----BEGIN PGP MESSAGE-----").is_err_and(|e| e.contains("armor")));
        assert!(framing_of(b"").is_err_and(|e| e.contains("empty")));
        // Tag 9: encrypted without integrity protection.
        let sed = [pkesk, vec![0xc9, 3, 0, 0, 0]].concat();
        assert!(framing_of(&sed).is_err_and(|e| e.contains("integrity")));
    }
}
