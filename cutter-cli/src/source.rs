//! `cutter source register / list / check`: intake of documents into the live source
//! registry, where each document's pinned sha256 is what a live run's `source_pin` checks.

use std::path::Path;

use anyhow::anyhow;
use cutter_adapters::pg;
use cutter_core::plan::sha256_hex;

use crate::app::Result;
use crate::cli::Source;
use crate::exit::{CliError, Code};
use cutter_adapters::wiring::Adapters as Env;

fn file_sha(file: &Path) -> Result<String> {
    Ok(sha256_hex(&crate::app::read_source(file)?))
}

pub async fn run(env: &Env, command: Source) -> Result<()> {
    let db = crate::app::live_db(env)?;
    match command {
        Source::Register {
            file,
            document_id,
            title,
            protected,
        } => {
            cutter_adapters::check_id("document id", &document_id).map_err(CliError::usage)?;
            if title.trim().is_empty() {
                return Err(CliError::usage(anyhow!(
                    "register {document_id}: --title is empty; give the document's title"
                )));
            }
            let sha = file_sha(&file)?;
            let client = db.admin_client().await?;
            let is_protected = pg::register_source(&client, &document_id, title.trim(), &sha, protected)
                .await
                .map_err(|e| CliError {
                    code: Code::Governance,
                    error: anyhow!("{e}; a registered pin is never replaced — register the new text under a new document id"),
                })?;
            println!(
                "registered {document_id} ({}) pinned to sha256 {sha}{}",
                title.trim(),
                if is_protected {
                    "; PROTECTED: its SG_1 approval must carry the protected allowance"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Source::List { json } => {
            let client = db.admin_client().await?;
            let all = pg::registered_sources(&client)
                .await
                .map_err(CliError::internal)?;
            if json {
                let value: Vec<_> = all
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "document_id": s.document_id,
                            "title": s.title,
                            "pinned_sha256": s.pinned_sha256,
                            "protected": s.protected,
                        })
                    })
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
            Ok(())
        }
        Source::Check { document_id, file } => {
            let sha = file_sha(&file)?;
            match cutter_adapters::wiring::intake::lookup(&db, &document_id).await? {
                None => Err(CliError {
                    code: Code::Governance,
                    error: anyhow!(
                        "check {document_id}: it is not registered; register it with `cutter source register {} --document-id {document_id} --title TITLE`",
                        file.display()
                    ),
                }),
                Some(e) if e.pinned_sha256 == sha => {
                    println!("{document_id}: {} matches its pin {sha}", file.display());
                    Ok(())
                }
                Some(e) => Err(CliError {
                    code: Code::Governance,
                    error: anyhow!(
                        "check {document_id}: {} has sha256 {sha}, the pin is {}; a live run would stop with STOP_DRIFT",
                        file.display(),
                        e.pinned_sha256
                    ),
                }),
            }
        }
    }
}
