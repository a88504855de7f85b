//! Benchmarks of the backups, each side by side with its baseline in the same process:
//!
//! 1. **The pre-write backup of a run** (`BACKUP_BENCH=document`): a 36-unit document in a
//!    provisioned knowledge base that holds `BACKUP_BENCH_OTHER` (default 100,000) units of
//!    another document. The per-document backup (what `pre_write_backup` runs now) against
//!    the whole-table `pg_dump` of every table a run writes (what it ran before issue 18).
//!    Goal: the per-document backup <= 100 ms.
//! 2. **The pg_dump pipeline** (`BACKUP_BENCH=pgdump`, kept for `cutter backup full`): our
//!    runner against a plain `pg_dump -Fc -t … | gpg --encrypt` of the same table. The target
//!    is a ratio <= 1.2 on a table of 100,000 units (`BACKUP_BENCH_ROWS`).
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), pg_dump and gpg on PATH.
//! Run with `cargo bench -p cutter-adapters --bench backup` (both parts);
//! `BACKUP_BENCH_ROUNDS` sets the number of rounds.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use cutter_adapters::backup::GpgBackupRunner;
use cutter_adapters::pg::{provision, register_source, schema, PgRoles, RolePasswords};
use cutter_core::ports::BackupRunner;
use cutter_testkit::external::{run, server, GpgHome, ScratchDb};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let which = std::env::var("BACKUP_BENCH").unwrap_or_else(|_| "all".into());
    let rounds = env_or("BACKUP_BENCH_ROUNDS", 5).max(1);
    if which == "all" || which == "document" {
        document_bench(rounds)?;
    }
    if which == "all" || which == "pgdump" {
        pgdump_bench(rounds)?;
    }
    Ok(())
}

/// `units` draft units of `doc`, one version and one lifecycle row each, written as the
/// superuser with triggers off (the write functions would take minutes for 100,000).
fn seed(db: &ScratchDb, doc: &str, units: usize) -> Result<()> {
    db.sql(&format!(
        "SET session_replication_role = replica;
         INSERT INTO public.information_unit (document_id, unit_key, parent_key, ordinal,
             plan_position, unit_kind, section_type, title, created_by_run)
         SELECT '{doc}', 'u' || g, NULL, g, g - 1, 'article', 'body', 'Article ' || g, 'seed-{doc}'
         FROM generate_series(1, {units}) g;
         INSERT INTO public.unit_version (document_id, unit_key, version_no, body, body_sha256,
             created_by_run, ordinal, unit_kind, section_type, title, change_position,
             version_status)
         SELECT '{doc}', 'u' || g, 1, b, encode(sha256(convert_to(b, 'UTF8')), 'hex'), 'seed-{doc}',
                g, 'article', 'body', 'Article ' || g, g - 1, 'draft'
         FROM generate_series(1, {units}) g,
              LATERAL (SELECT left(repeat(md5(g::text) || ' ', 40), 200 + (g * 7919) % 1801) AS b) x;
         INSERT INTO public.iu_lifecycle_log (run_id, document_id, unit_key, from_status,
             to_status, version_no, action)
         SELECT 'seed-{doc}', '{doc}', 'u' || g, 'draft', 'draft', 1, 'add'
         FROM generate_series(1, {units}) g;"
    ))?;
    Ok(())
}

fn document_bench(rounds: usize) -> Result<()> {
    let other = env_or("BACKUP_BENCH_OTHER", 100_000);
    let scratch = ScratchDb::new("cutter_bench_doc")?;
    let roles = PgRoles::new(
        &scratch.admin_role,
        &scratch.exec_role,
        &scratch.verify_role,
    )?;
    let gpg = GpgHome::new()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t0 = Instant::now();
    rt.block_on(async {
        let (mut client, conn) = tokio_postgres::connect(&scratch.url(), tokio_postgres::NoTls)
            .await
            .context("connect as the superuser")?;
        tokio::spawn(conn);
        let passwords = RolePasswords {
            allow_none: true,
            ..RolePasswords::default()
        };
        provision(&mut client, &roles, &passwords).await?;
        for doc in ["doc-other", "doc-run"] {
            register_source(&mut client, doc, "bench", &"a".repeat(64), false).await?;
        }
        anyhow::Ok(())
    })?;
    seed(&scratch, "doc-other", other)?;
    seed(&scratch, "doc-run", 36)?;
    scratch.sql("VACUUM ANALYZE")?;
    println!(
        "document backup: seeded a knowledge base with {other} other units and a 36-unit document in {:.1?}",
        t0.elapsed()
    );

    let out = tempfile::tempdir()?;
    // As the CLI wires it: the document is read as the verify role, pg_dump logs in as admin.
    let admin_url = format!(
        "{}/{}?user={}",
        server().replace("postgres@", ""),
        scratch.name,
        scratch.admin_role
    );
    let mut runner = GpgBackupRunner::new(&admin_url, &gpg.fpr, out.path().join("doc"));
    runner.gnupg_home = Some(gpg.path().to_path_buf());
    runner.reader_url = Some(format!(
        "{}/{}?user={}",
        server().replace("postgres@", ""),
        scratch.name,
        scratch.verify_role
    ));
    let written: Vec<String> = schema::WRITTEN_TABLES
        .iter()
        .map(|t| t.to_string())
        .collect();
    let (mut ours, mut old) = (Vec::new(), Vec::new());
    let mut sizes = (0u64, 0u64);
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let t = Instant::now();
            if which == 0 {
                let env = rt
                    .block_on(runner.backup(&format!("doc-{round}"), "doc-run", Utc::now()))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                ours.push(t.elapsed());
                sizes.0 = env.bytes;
            } else {
                let env = rt
                    .block_on(runner.dump_tables(&format!("old-{round}"), &written, Utc::now()))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                old.push(t.elapsed());
                sizes.1 = env.bytes;
            }
        }
        println!(
            "round {round}: per-document {:.2?}, whole-table pg_dump {:.2?}",
            ours[round], old[round]
        );
    }
    let (o, p) = (median(ours), median(old));
    println!(
        "pre_write_backup, median over {rounds} rounds: per-document {o:.2?} ({} bytes) vs whole-table pg_dump {p:.2?} ({} bytes), ratio {:.4} (goal: per-document <= 100 ms)",
        sizes.0,
        sizes.1,
        o.as_secs_f64() / p.as_secs_f64()
    );
    Ok(())
}

fn pgdump_bench(rounds: usize) -> Result<()> {
    let rows = env_or("BACKUP_BENCH_ROWS", 100_000);
    // A throwaway database and GnuPG home with a generated key, both removed on drop.
    let scratch = ScratchDb::new("cutter_bench")?;
    let gpg = GpgHome::new()?;
    let (home, fpr) = (gpg.path(), gpg.fpr.clone());
    let t0 = Instant::now();
    // Bodies of 200-2,000 bytes of hex words: about as compressible as prose.
    scratch.sql(&format!(
        "create table units (id bigint primary key, key text not null, body text not null);
             insert into units
               select g, 'doc-' || (g / 1000) || '/' || g,
                      left((select string_agg(md5(random()::text || w || g), ' ')
                            from generate_series(1, 61) w), 200 + (g * 7919) % 1801)
               from generate_series(1, {rows}) g;"
    ))?;
    scratch.sql("vacuum analyze units")?;
    let size = scratch.sql(
        "select pg_size_pretty(pg_total_relation_size('units')) || ', avg body ' || avg(length(body))::int || ' bytes' from units",
    )?;
    println!("seeded {rows} rows ({size}) in {:.1?}", t0.elapsed());

    let url = scratch.url();
    let out = tempfile::tempdir()?;
    let mut runner = GpgBackupRunner::new(&url, &fpr, out.path().join("ours"));
    runner.gnupg_home = Some(home.to_path_buf());
    let tables = vec!["public.units".to_string()];
    let plain_file = out.path().join("plain.dump.gpg");
    let plain_cmd = format!(
        "pg_dump -Fc --no-owner -t public.units --dbname='{url}' | gpg --batch --yes --trust-model always --encrypt -r {fpr} > '{}'",
        plain_file.display()
    );

    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    let mut sizes = (0u64, 0u64);
    for round in 0..rounds {
        // Alternate which goes first so caching and neighbours' load fall on both alike.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let t = Instant::now();
            if which == 0 {
                let env = runner
                    .backup_blocking(&format!("bench-{round}"), &tables, Utc::now())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                ours.push(t.elapsed());
                sizes.0 = env.bytes;
            } else {
                run(Command::new("sh")
                    .env("GNUPGHOME", home)
                    .arg("-c")
                    .arg(&plain_cmd))?;
                plain.push(t.elapsed());
                sizes.1 = std::fs::metadata(Path::new(&plain_file))?.len();
            }
        }
        println!(
            "round {round}: ours {:.2?}, plain {:.2?}",
            ours[round], plain[round]
        );
    }
    let (o, p) = (median(ours), median(plain));
    println!(
        "median over {rounds} rounds: ours {o:.2?} ({} bytes), plain pipeline {p:.2?} ({} bytes), ratio {:.3} (target <= 1.2)",
        sizes.0,
        sizes.1,
        o.as_secs_f64() / p.as_secs_f64()
    );
    Ok(())
}
