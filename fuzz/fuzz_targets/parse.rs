//! Fuzz target `parse`: any bytes, with every built-in profile (as text and as an `.html` file)
//! and with detection, must give a plan or an error — never a panic — and an accepted plan must
//! be valid.
//!
//! Run from the repository root after `cargo install cargo-fuzz`: `cargo +nightly fuzz run parse`,
//! or on a stable toolchain `RUSTC_BOOTSTRAP=1 cargo fuzz run parse` (cargo-fuzz needs nightly
//! flags for the sanitizer). Seeding it with `../shared/corpus/*` and a built-in profile joined
//! to a document by `\n---\n` reaches the profile-loading path too.
#![no_main]

use cutter_core::parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for profile in parser::builtins() {
        if let Ok(parsed) = parser::parse("fuzz", data, profile) {
            assert!(parsed.plan.validate().is_empty());
        }
    }
    let _ = parser::parse_detected("fuzz", data);
    // Named `.html`, the bytes are read as a whole HTML document.
    for profile in parser::builtins() {
        if let Ok(parsed) = parser::parse("fuzz.html", data, profile) {
            assert!(parsed.plan.validate().is_empty());
        }
    }
    // The first bytes, read as a profile, exercise the TOML and regex compilation too.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some((profile_text, document)) = text.split_once("\n---\n") {
            if let Ok(profile) = parser::Profile::from_toml_str("fuzz.toml", profile_text) {
                let _ = parser::parse("fuzz", document.as_bytes(), &profile);
            }
        }
    }
});
