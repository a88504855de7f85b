//! `cutter source register / list / history / check`: intake of documents into the live
//! source registry (`cutter_adapters::wiring::intake` does it). Each registered text is a
//! version of its document; the latest version's sha256 is the pin a live run's `source_pin`
//! checks, and the only text a live run cuts.

use cutter_adapters::wiring::intake;
use cutter_adapters::wiring::Adapters as Env;
use cutter_core::intake::describe_registration;
use cutter_core::ports::SourceVersion;
use cutter_core::text::escape_controls;
use serde_json::{json, Value};

use crate::cli::Source;
use crate::exit::Result;

fn version_json(v: &SourceVersion, latest: u32) -> Value {
    json!({
        "version": v.version_no,
        "sha256": v.sha256,
        "registered_utc": v.registered_utc.to_rfc3339(),
        "registered_by": v.registered_by,
        "effective_date": v.effective_date.map(|d| d.to_string()),
        "latest": v.version_no == latest,
    })
}

pub async fn run(env: &Env, command: Source, as_json: bool) -> Result<()> {
    match command {
        Source::Register {
            file,
            document_id,
            title,
            effective,
            protected,
        } => {
            let done = intake::register_file(
                env,
                &intake::Register {
                    file: &file,
                    document_id: &document_id,
                    title: title.as_deref(),
                    protected,
                    effective,
                },
            )
            .await?;
            let reg = &done.registration;
            let doc = &reg.document;
            if as_json {
                println!(
                    "{}",
                    json!({
                        "document_id": document_id,
                        "title": doc.title,
                        "created": reg.created,
                        "version": version_json(&reg.version, doc.version_no),
                        "latest_version": doc.version_no,
                        "pinned_sha256": doc.pinned_sha256,
                        "protected": doc.protected,
                        "versions": doc.versions,
                    })
                );
                return Ok(());
            }
            println!(
                "{}",
                describe_registration(
                    &document_id,
                    reg.version.version_no,
                    reg.created,
                    doc.version_no,
                    &done.sha256
                )
            );
            if let (true, Some(date)) = (reg.created, reg.version.effective_date) {
                println!("effective {date}");
            }
            if doc.protected {
                println!("PROTECTED: its SG_1 approval must carry the protected allowance");
            }
            if reg.created {
                println!(
                    "next: rehearse it with `cutter orchestrate cut {} --document-id {document_id} --mode dry-run --self-approve`, then `cutter preflight {} --document-id {document_id}`",
                    file.display(),
                    file.display()
                );
            }
        }
        Source::List => {
            let all = intake::registered(env).await?;
            if as_json {
                let value: Vec<_> = all
                    .iter()
                    .map(|s| {
                        json!({
                            "document_id": s.document_id,
                            "title": s.title,
                            "version": s.version_no,
                            "pinned_sha256": s.pinned_sha256,
                            "effective_date": s.effective_date.map(|d| d.to_string()),
                            "protected": s.protected,
                            "versions": s.versions,
                        })
                    })
                    .collect();
                println!("{}", Value::Array(value));
            } else if all.is_empty() {
                println!("no documents registered; register one with `cutter source register FILE --document-id ID --title TITLE`");
            } else {
                println!(
                    "{:<24} {:>7} {:>8}  {:<9}  {:<64}  TITLE",
                    "DOCUMENT", "VERSION", "VERSIONS", "PROTECTED", "SHA256 (THE PIN)"
                );
                for s in &all {
                    println!(
                        "{:<24} {:>7} {:>8}  {:<9}  {}  {}",
                        s.document_id,
                        s.version_no,
                        s.versions,
                        if s.protected { "yes" } else { "no" },
                        s.pinned_sha256,
                        escape_controls(&s.title)
                    );
                }
            }
        }
        Source::History { document_id } => {
            let (doc, versions) = intake::history(env, &document_id).await?;
            if as_json {
                println!(
                    "{}",
                    json!({
                        "document_id": doc.document_id,
                        "title": doc.title,
                        "protected": doc.protected,
                        "latest_version": doc.version_no,
                        "pinned_sha256": doc.pinned_sha256,
                        "versions": versions
                            .iter()
                            .map(|v| version_json(v, doc.version_no))
                            .collect::<Vec<_>>(),
                    })
                );
                return Ok(());
            }
            println!(
                "{} ({}): {} version{}, the latest is version {}{}",
                doc.document_id,
                escape_controls(&doc.title),
                versions.len(),
                if versions.len() == 1 { "" } else { "s" },
                doc.version_no,
                if doc.protected { "; PROTECTED" } else { "" }
            );
            println!(
                "{:>7}  {:<64}  {:<20}  {:<10}  REGISTERED BY",
                "VERSION", "SHA256", "REGISTERED (UTC)", "EFFECTIVE"
            );
            for v in &versions {
                println!(
                    "{:>7}  {}  {:<20}  {:<10}  {}{}",
                    v.version_no,
                    v.sha256,
                    v.registered_utc.format("%Y-%m-%dT%H:%M:%SZ"),
                    v.effective_date
                        .map_or_else(|| "-".to_string(), |d| d.to_string()),
                    escape_controls(&v.registered_by),
                    if v.version_no == doc.version_no {
                        "  (latest: the pin)"
                    } else {
                        ""
                    }
                );
            }
        }
        Source::Check { document_id, file } => {
            let checked = intake::check_file(env, &document_id, &file).await?;
            if as_json {
                println!(
                    "{}",
                    json!({"document_id": document_id, "file": file, "sha256": checked.sha256, "pinned_sha256": checked.pinned_sha256, "version": checked.version_no, "matches": true})
                );
            } else {
                println!(
                    "{document_id}: {} matches its pin {} (version {}, the latest)",
                    file.display(),
                    checked.sha256,
                    checked.version_no
                );
            }
        }
    }
    Ok(())
}
