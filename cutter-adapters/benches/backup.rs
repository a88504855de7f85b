//! Benchmark: our backup runner against a plain `pg_dump -Fc -t … | gpg --encrypt` of the same
//! table, side by side. The target is a ratio <= 1.2 on a table of 100,000 units.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), pg_dump and gpg on PATH.
//! Run with `cargo bench -p cutter-adapters --bench backup`; `BACKUP_BENCH_ROWS` and
//! `BACKUP_BENCH_ROUNDS` override the size and the number of rounds.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Utc;
use cutter_adapters::backup::GpgBackupRunner;
use cutter_testkit::external::{run, GpgHome, ScratchDb};

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
    let rows = env_or("BACKUP_BENCH_ROWS", 100_000);
    let rounds = env_or("BACKUP_BENCH_ROUNDS", 5).max(1);
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
