//! Documentation generated from the command-line definition: shell completion scripts
//! (`cutter completions`) and man pages (`cutter man`). Nothing here is written by hand twice:
//! they are rendered from [`crate::cli::command`], the same definition the parser uses (whose
//! help texts and examples are in `help.rs`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap_complete::Shell;

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = crate::cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cutter", &mut out);
    out
}

/// The top man page, `cutter.1`, in roff.
pub fn man_page() -> anyhow::Result<Vec<u8>> {
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("render the man page")?;
    Ok(out)
}

/// Writes `cutter.1` and one page per subcommand (`cutter-orchestrate-cut.1`, …) into `dir`,
/// creating it if needed; returns the files written, the top page first.
pub fn man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(cmd, dir, &mut written)?;
    Ok(written)
}

fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut bytes = Vec::new();
    man.render(&mut bytes).context("render a man page")?;
    cutter_adapters::atomic::write_atomic(&path, &bytes)
        .with_context(|| format!("write {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// Splits an example line into words the way a shell would for these simple lines
    /// (quotes, no expansion), stopping at a redirection or a pipe.
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        let mut quote = None;
        let mut started = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '"' | '\'') => {
                    quote = Some(c);
                    started = true;
                }
                (None, ' ') => {
                    if started {
                        out.push(std::mem::take(&mut word));
                        started = false;
                    }
                }
                (None, c) => {
                    word.push(c);
                    started = true;
                }
            }
        }
        if started {
            out.push(word);
        }
        let end = out
            .iter()
            .position(|w| matches!(w.as_str(), ">" | ">>" | "|" | "&&" | ";"))
            .unwrap_or(out.len());
        out.truncate(end);
        out
    }

    fn visit(cmd: &clap::Command, path: &[String], seen: &mut Vec<String>) {
        let name = path.join(" ");
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            assert!(
                arg.get_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty()),
                "`{name}`: argument `{id}` has no help text"
            );
        }
        assert!(cmd.get_about().is_some(), "`{name}` has no description");
        let after = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(after.contains("Examples:"), "`{name}` has no examples");
        let mut own = 0;
        for line in after.lines().map(str::trim) {
            if !line.starts_with("cutter ") {
                continue;
            }
            let argv = words(line);
            if let Err(e) = crate::cli::command().try_get_matches_from(&argv) {
                panic!("`{name}`: example `{line}` does not parse: {e}");
            }
            if argv[1..].starts_with(&path[1..]) {
                own += 1;
            }
        }
        assert!(own > 0, "`{name}`: no example runs the command itself");
        seen.push(name);
        for sub in cmd.get_subcommands() {
            let mut p = path.to_vec();
            p.push(sub.get_name().to_string());
            visit(sub, &p, seen);
        }
    }

    #[test]
    fn every_command_has_help_for_each_argument_and_examples_that_parse() {
        let mut cmd = crate::cli::command().disable_help_subcommand(true);
        cmd.build();
        let mut seen = Vec::new();
        visit(&cmd, &["cutter".to_string()], &mut seen);
        assert!(seen.len() > 30, "{seen:?}");
    }

    #[test]
    fn example_words_follow_the_shell() {
        assert_eq!(
            words("cutter approve sign a --approver \"Ada Approver\" > x"),
            [
                "cutter",
                "approve",
                "sign",
                "a",
                "--approver",
                "Ada Approver"
            ]
        );
    }
}
