//! gpg as the backup uses it: the recipient key in the keyring, the ciphertext's recipient,
//! and decryption to a pipe read back by pg_restore.

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

use super::dump::{DumpFacts, DumpReaders};
use super::openpgp::openpgp_framing;
use super::pipeline::{tee, TeeError};
use super::process::{drain, excerpt, first_line_of, join};
use super::{BackupError, GpgBackupRunner};

/// The outcome of the decryption check.
pub(super) enum Decryption {
    /// Decrypted to a pipe and read to the end by pg_restore.
    Listed(DumpFacts),
    /// Not tried or not possible here; the reason.
    Skipped(String),
}

/// The recipient's key as the keyring lists it.
pub(super) struct RecipientKey {
    /// Validity of the primary key (colon listing field 2).
    pub(super) validity: String,
    /// Capabilities of the whole key (field 12; upper-case letters are usable ones).
    pub(super) caps: String,
    /// Key ids a message to this key may name: the primary key and every subkey that can
    /// encrypt, whatever its validity today (an old backup stays encrypted to an expired one).
    pub(super) key_ids: Vec<String>,
}

impl GpgBackupRunner {
    pub(super) fn gpg_command(&self) -> Command {
        let mut c = Command::new(&self.gpg);
        if let Some(home) = &self.gnupg_home {
            c.env("GNUPGHOME", home);
        }
        c
    }

    /// `gpg --encrypt` to `fpr`, reading plaintext on stdin and writing the binary message on
    /// stdout (every pipe taken): what both backups stream into.
    pub(super) fn encrypt_command(&self, fpr: &str) -> Command {
        let mut c = self.gpg_command();
        c.args([
            "--batch",
            "--yes",
            "--no-tty",
            "--quiet",
            "--trust-model",
            "always",
            // A gpg.conf with `armor` or `throw-keyids` must not change what is written:
            // the checks read binary OpenPGP naming the recipient's key id.
            "--no-armor",
            "--no-throw-keyids",
            "--encrypt",
            "--recipient",
            fpr,
            "--output",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    }

    /// `gpg --decrypt` of `path` to stdout, never asking for a passphrase, with its status
    /// lines on stderr (read them with [`decryption_verdict`]).
    fn decrypt_command(&self, path: &Path) -> Command {
        let mut c = self.gpg_command();
        c.args([
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "error",
            "--status-fd",
            "2",
            "--quiet",
            "--decrypt",
            "--output",
            "-",
            "--",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    }

    pub(super) fn gpg_version(&self) -> Result<String, BackupError> {
        first_line_of(self.gpg_command().arg("--version"), "gpg")
    }

    /// Fails unless the keyring holds a valid key with this fingerprint that can encrypt;
    /// returns the key ids a message to it may name.
    pub(super) fn check_recipient(&self, fpr: &str) -> Result<Vec<String>, BackupError> {
        let key = self.recipient_key(fpr)?;
        let missing = |detail: String| BackupError::MissingKey {
            recipient: fpr.to_string(),
            detail,
        };
        if matches!(key.validity.as_str(), "r" | "e" | "d" | "i") {
            return Err(missing(format!(
                "the key is revoked, expired, disabled or invalid (validity `{}`)",
                key.validity
            )));
        }
        if !key.caps.contains('E') {
            return Err(missing(
                "the key has no usable encryption subkey".to_string(),
            ));
        }
        Ok(key.key_ids)
    }

    /// The key with this fingerprint (of the primary key or a subkey) in the keyring.
    pub(super) fn recipient_key(&self, fpr: &str) -> Result<RecipientKey, BackupError> {
        let out = self
            .gpg_command()
            .args(["--batch", "--with-colons", "--list-keys", fpr])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| BackupError::Spawn {
                tool: "gpg".into(),
                source,
            })?;
        let missing = |detail: String| BackupError::MissingKey {
            recipient: fpr.to_string(),
            detail,
        };
        if !out.status.success() {
            return Err(missing(format!(
                "gpg --list-keys exited with {}: {}",
                out.status,
                excerpt(&out.stderr)
            )));
        }
        let listing = String::from_utf8_lossy(&out.stdout);
        // Colon listing: a `pub` record (field 2 validity, field 5 key id, field 12
        // capabilities, where an upper-case letter is the usable capability of the whole
        // key), `sub` records (the same fields for each subkey, lower-case capabilities) and
        // an `fpr` record after each of them.
        let mut current: Option<(RecipientKey, bool)> = None;
        let mut found: Option<RecipientKey> = None;
        let field = |f: &[&str], i: usize| f.get(i).copied().unwrap_or("").to_string();
        for line in listing.lines() {
            let f: Vec<&str> = line.split(':').collect();
            match f.first().copied() {
                Some("pub") => {
                    if let Some((key, true)) = current.take() {
                        found.get_or_insert(key);
                    }
                    current = Some((
                        RecipientKey {
                            validity: field(&f, 1),
                            caps: field(&f, 11),
                            key_ids: vec![field(&f, 4).to_ascii_uppercase()],
                        },
                        false,
                    ));
                }
                Some("sub") => {
                    if let Some((key, _)) = current.as_mut() {
                        if field(&f, 11).contains('e') {
                            key.key_ids.push(field(&f, 4).to_ascii_uppercase());
                        }
                    }
                }
                Some("fpr") if f.get(9).is_some_and(|x| x.eq_ignore_ascii_case(fpr)) => {
                    if let Some((_, matched)) = current.as_mut() {
                        *matched = true;
                    }
                }
                _ => {}
            }
        }
        if let Some((key, true)) = current.take() {
            found.get_or_insert(key);
        }
        found.ok_or_else(|| missing("no key with that fingerprint".into()))
    }

    /// Whether the keyring holds the secret part of the recipient's key.
    pub(super) fn has_secret_key(&self, fpr: &str) -> bool {
        let secret = self
            .gpg_command()
            .args(["--batch", "--with-colons", "--list-secret-keys", fpr])
            .stdin(Stdio::null())
            .output();
        matches!(&secret, Ok(o) if o.status.success())
    }

    /// Proves `path` is an OpenPGP message to one of `key_ids` (the recipient's): the framing
    /// walked here to the last byte, then gpg's own packet listing, which `--list-only` keeps
    /// from decrypting (so no passphrase prompt, and the same answer with or without the
    /// secret key). Returns the key ids the file names.
    pub(super) fn check_ciphertext(
        &self,
        path: &Path,
        fpr: &str,
        key_ids: &[String],
    ) -> Result<Vec<String>, BackupError> {
        let bad = |detail: String| BackupError::BadCiphertext {
            path: path.to_path_buf(),
            recipient: fpr.to_string(),
            detail,
        };
        let framing = openpgp_framing(path).map_err(bad)?;
        let out = self
            .gpg_command()
            .args(["--batch", "--no-tty", "--list-only", "--list-packets", "--"])
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| BackupError::Spawn {
                tool: "gpg".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(bad(format!(
                "gpg --list-packets exited with {}: {}",
                out.status,
                excerpt(&out.stderr)
            )));
        }
        let (listed_ids, data_packet) = packet_listing(&String::from_utf8_lossy(&out.stdout));
        if listed_ids.is_empty() {
            return Err(bad(
                "gpg lists no public-key-encrypted session key packet".into()
            ));
        }
        if !data_packet {
            return Err(bad("gpg lists no encrypted data packet".into()));
        }
        let ours = |ids: &[String]| ids.iter().any(|id| key_ids.contains(id));
        if !ours(&listed_ids) || !ours(&framing.key_ids) {
            return Err(bad(format!(
                "it is encrypted to key id {}, not to any of the recipient's ({})",
                listed_ids.join(", "),
                key_ids.join(", ")
            )));
        }
        Ok(framing.key_ids)
    }

    /// When the recipient's secret key is here, decrypts `path` to a pipe (never to disk)
    /// read by `pg_restore --list` and hashed. With `plain_sha256` (a backup, whose plaintext
    /// pg_restore already read to the end on its way to gpg) the hash must match it, which
    /// proves the decrypted dump is that very dump and saves a second full read; without it
    /// (a verification) `pg_restore --file=-` reads the decrypted dump to its end. gpg may
    /// not ask for a passphrase (`--pinentry-mode error`): a key that needs one, like a
    /// missing secret key, skips the check rather than failing it, since the backup machine
    /// need not be able to decrypt.
    pub(super) fn decrypt_and_list(
        &self,
        path: &Path,
        fpr: &str,
        plain_sha256: Option<&str>,
    ) -> Result<Decryption, BackupError> {
        if !self.has_secret_key(fpr) {
            return Ok(Decryption::Skipped(format!(
                "the secret key of {fpr} is not in this keyring"
            )));
        }
        let fail = |detail: String| BackupError::DecryptFailed {
            path: path.to_path_buf(),
            recipient: fpr.to_string(),
            detail,
        };
        let mut readers = DumpReaders::spawn(&self.pg_restore_path(), plain_sha256.is_none())?;
        let mut gpg = self
            .decrypt_command(path)
            .spawn()
            .map_err(|source| BackupError::Spawn {
                tool: "gpg".into(),
                source,
            })?;
        let gpg_err = drain(gpg.stderr.take());
        let fed = match gpg.stdout.take() {
            Some(plain) => tee(plain, None, readers.take_inputs()),
            None => Err(TeeError::Read(io::Error::other("no stdout pipe"))),
        };
        if fed.is_err() {
            let _ = gpg.kill();
        }
        let status = gpg.wait();
        let stderr = join(gpg_err);
        let facts = readers.finish();
        let status = status.map_err(|source| BackupError::Io {
            what: "wait for",
            path: self.gpg.clone(),
            source,
        })?;
        match decryption_verdict(status, &stderr) {
            Verdict::Okay => {}
            Verdict::KeyUnusable(reason) => return Ok(Decryption::Skipped(reason)),
            Verdict::Failed(detail) => return Err(fail(detail)),
        }
        let decrypted = fed.map_err(|e| fail(format!("read gpg's output: {}", e.io())))?;
        if let Some(want) = plain_sha256 {
            if decrypted.sha256 != want {
                return Err(fail(format!(
                    "the decrypted dump ({} bytes, sha256 {}) is not the dump pg_dump wrote (sha256 {want})",
                    decrypted.bytes, decrypted.sha256
                )));
            }
        }
        Ok(Decryption::Listed(facts?))
    }
}

/// The outcome of decrypting into a reader of the plaintext.
pub(super) enum Decrypted<T> {
    /// gpg's integrity check passed and the reader read the whole plaintext: what it found.
    Read(T),
    /// The secret key is not usable here; the reason.
    Skipped(String),
}

impl GpgBackupRunner {
    /// When the recipient's secret key is here, decrypts `path` to a pipe (never to disk) and
    /// hands the plaintext to `consume`, which must read it to its end. gpg must report
    /// `DECRYPTION_OKAY` (its integrity check over the whole message) and `consume` must
    /// succeed; a key that needs a passphrase or is missing skips, as in `decrypt_and_list`.
    /// gpg's verdict comes first: a tampered message makes `consume` read junk, and the
    /// integrity failure is the cause worth naming.
    pub(super) fn decrypt_with<T>(
        &self,
        path: &Path,
        fpr: &str,
        consume: impl FnOnce(&mut dyn io::BufRead) -> Result<T, String>,
    ) -> Result<Decrypted<T>, BackupError> {
        if !self.has_secret_key(fpr) {
            return Ok(Decrypted::Skipped(format!(
                "the secret key of {fpr} is not in this keyring"
            )));
        }
        let fail = |detail: String| BackupError::DecryptFailed {
            path: path.to_path_buf(),
            recipient: fpr.to_string(),
            detail,
        };
        let mut gpg = self
            .decrypt_command(path)
            .spawn()
            .map_err(|source| BackupError::Spawn {
                tool: "gpg".into(),
                source,
            })?;
        let gpg_err = drain(gpg.stderr.take());
        let consumed = match gpg.stdout.take() {
            Some(plain) => {
                let mut reader = io::BufReader::with_capacity(256 * 1024, plain);
                let result = consume(&mut reader);
                // Read what the consumer left, so gpg reaches the end and gives its verdict.
                let _ = io::copy(&mut reader, &mut io::sink());
                result
            }
            None => Err("gpg gave no stdout pipe".to_string()),
        };
        let status = gpg.wait().map_err(|source| BackupError::Io {
            what: "wait for",
            path: self.gpg.clone(),
            source,
        })?;
        let stderr = join(gpg_err);
        match decryption_verdict(status, &stderr) {
            Verdict::Okay => {}
            Verdict::KeyUnusable(reason) => return Ok(Decrypted::Skipped(reason)),
            Verdict::Failed(detail) => return Err(fail(detail)),
        }
        consumed.map(Decrypted::Read).map_err(fail)
    }
}

/// What gpg said of a decryption.
enum Verdict {
    Okay,
    /// The secret key needs a passphrase or is missing: the check is skipped, with why.
    KeyUnusable(String),
    /// Anything else: the exit status and gpg's messages.
    Failed(String),
}

/// Reads gpg's exit status and `--status-fd 2` stderr after a decryption. Exit 0 alone is not
/// enough: DECRYPTION_OKAY is gpg's word that the integrity check (MDC or AEAD tag) over the
/// whole message passed.
fn decryption_verdict(status: std::process::ExitStatus, stderr: &[u8]) -> Verdict {
    let (status_lines, messages) = split_status(stderr);
    let okay = status_lines
        .iter()
        .any(|l| l.starts_with("DECRYPTION_OKAY"))
        && !status_lines
            .iter()
            .any(|l| l.starts_with("DECRYPTION_FAILED"));
    if status.success() && okay {
        return Verdict::Okay;
    }
    if let Some(reason) = key_unusable(&status_lines) {
        return Verdict::KeyUnusable(reason);
    }
    let text = if messages.is_empty() {
        "no message".to_string()
    } else {
        messages
    };
    Verdict::Failed(format!("gpg exited with {status}: {text}"))
}

/// Splits gpg's stderr under `--status-fd 2` into its status lines (without the
/// `[GNUPG:] ` prefix) and the human messages, as one excerpt.
pub(super) fn split_status(stderr: &[u8]) -> (Vec<String>, String) {
    let text = String::from_utf8_lossy(stderr);
    let mut status = Vec::new();
    let mut messages = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("[GNUPG:] ") {
            Some(s) => status.push(s.to_string()),
            None => messages.push(line),
        }
    }
    (status, excerpt(messages.join("\n").as_bytes()))
}

/// Why the secret key could not be used here, if that is why decryption failed: gpg reports
/// `ERROR pkdecrypt_failed CODE` (libgpg-error code in the low 16 bits: 11 bad passphrase,
/// 17 no secret key, 85 no pinentry, 99 canceled, 198 fully canceled) or `NO_SECKEY` for a
/// secret subkey that is not in this keyring. Any other failure is the ciphertext's.
pub(super) fn key_unusable(status_lines: &[String]) -> Option<String> {
    for line in status_lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let ["ERROR", "pkdecrypt_failed", code, ..] = f.as_slice() {
            match code.parse::<u32>().map(|c| c & 0xffff) {
                Ok(11 | 85 | 99 | 198) => {
                    return Some(
                        "the secret key needs a passphrase, which batch mode cannot ask for".into(),
                    )
                }
                Ok(17) => return Some("the secret key is not usable in this keyring".into()),
                _ => {}
            }
        }
    }
    if status_lines.iter().any(|l| l.starts_with("NO_SECKEY")) {
        return Some("the secret encryption subkey is not in this keyring".into());
    }
    None
}

/// The key ids of the `:pubkey enc packet:` lines of `gpg --list-packets` (`:pubkey enc
/// packet: version 3, algo 18, keyid A975BB25DBB9DCCE`), and whether it lists an encrypted
/// data packet (`:encrypted data packet:`, or `:aead encrypted packet:` from gpg 2.3 on).
pub(super) fn packet_listing(listing: &str) -> (Vec<String>, bool) {
    let mut ids = Vec::new();
    let mut data = false;
    for line in listing.lines() {
        if line.starts_with(":pubkey enc packet:") {
            let mut words = line.split_whitespace();
            if words.any(|w| w == "keyid") {
                if let Some(id) = words.next() {
                    ids.push(id.trim_end_matches(',').to_ascii_uppercase());
                }
            }
        } else if line.starts_with(":encrypted data packet:")
            || line.starts_with(":aead encrypted packet:")
        {
            data = true;
        }
    }
    (ids, data)
}

/// Accepts a fingerprint with or without spaces, in either case; returns it upper-case.
pub(super) fn normalize_fingerprint(recipient: &str) -> Result<String, BackupError> {
    let fpr: String = recipient
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    // A user id or short key id could match several keys; only a fingerprint is unambiguous.
    if (fpr.len() == 40 || fpr.len() == 64) && fpr.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(fpr)
    } else {
        Err(BackupError::BadRecipient(recipient.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_fingerprints() {
        assert!(normalize_fingerprint("c143 97b4 a2f4 b3c6 8faa 4210 4882 50f1 794e 235a").is_ok());
        assert!(normalize_fingerprint("test@example.invalid").is_err());
    }

    #[test]
    fn reads_gpg_packet_listings_and_status() {
        let listing = "# off=0 ctb=84 tag=1 hlen=2 plen=94\n:pubkey enc packet: version 3, algo 18, keyid A975BB25DBB9DCCE\n\tdata: [263 bits]\n# off=96 ctb=d2 tag=18 hlen=2 plen=0 partial new-ctb\n:encrypted data packet:\n\tlength: unknown\n\tmdc_method: 2\n";
        assert_eq!(
            packet_listing(listing),
            (vec!["A975BB25DBB9DCCE".to_string()], true)
        );
        assert_eq!(
            packet_listing("gpg: no valid OpenPGP data found."),
            (vec![], false)
        );
        let (status, messages) = split_status(
            b"[GNUPG:] ENC_TO 19925CD724598E5C 18 0\ngpg: public key decryption failed: No pinentry\n[GNUPG:] ERROR pkdecrypt_failed 67108949\n[GNUPG:] DECRYPTION_FAILED\n",
        );
        assert_eq!(messages, "gpg: public key decryption failed: No pinentry");
        assert!(key_unusable(&status).is_some_and(|r| r.contains("passphrase")));
        // A corrupt session key (bad data) is the ciphertext's fault, not the keyring's.
        assert!(key_unusable(&["ERROR pkdecrypt_failed 33554520".to_string()]).is_none());
    }
}
