//! `cutter source register / list / check`: intake of documents into the live source
//! registry (`cutter_adapters::wiring::intake` does it), where each document's pinned sha256
//! is what a live run's `source_pin` checks.

use cutter_adapters::wiring::intake;
use cutter_adapters::wiring::Adapters as Env;
use serde_json::json;

use crate::cli::Source;
use crate::exit::Result;

pub async fn run(env: &Env, command: Source, as_json: bool) -> Result<()> {
    match command {
        Source::Register {
            file,
            document_id,
            title,
            protected,
        } => {
            let (sha, protected) =
                intake::register_file(env, &file, &document_id, &title, protected).await?;
            if as_json {
                println!(
                    "{}",
                    json!({"document_id": document_id, "title": title.trim(), "pinned_sha256": sha, "protected": protected})
                );
                return Ok(());
            }
            println!(
                "registered {document_id} ({}) pinned to sha256 {sha}{}",
                title.trim(),
                if protected {
                    "; PROTECTED: its SG_1 approval must carry the protected allowance"
                } else {
                    ""
                }
            );
            println!(
                "next: rehearse it with `cutter orchestrate cut {} --document-id {document_id} --mode dry-run --self-approve`, then `cutter preflight {} --document-id {document_id}`",
                file.display(),
                file.display()
            );
        }
        Source::List => {
            let all = intake::registered(env).await?;
            if as_json {
                let value: Vec<_> = all
                    .iter()
                    .map(|s| json!({"document_id": s.document_id, "title": s.title, "pinned_sha256": s.pinned_sha256, "protected": s.protected}))
                    .collect();
                println!("{}", serde_json::Value::Array(value));
            } else if all.is_empty() {
                println!("no documents registered; register one with `cutter source register FILE --document-id ID --title TITLE`");
            } else {
                for s in &all {
                    println!(
                        "{:<24} {} {}{}",
                        s.document_id,
                        s.pinned_sha256,
                        s.title,
                        if s.protected { "  [protected]" } else { "" }
                    );
                }
            }
        }
        Source::Check { document_id, file } => {
            let (sha, pin) = intake::check_file(env, &document_id, &file).await?;
            if as_json {
                println!(
                    "{}",
                    json!({"document_id": document_id, "file": file, "sha256": sha, "pinned_sha256": pin, "matches": true})
                );
            } else {
                println!("{document_id}: {} matches its pin {sha}", file.display());
            }
        }
    }
    Ok(())
}
