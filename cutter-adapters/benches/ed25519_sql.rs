//! Benchmark: the cost of an Ed25519 verification in PostgreSQL (the PL/pgSQL
//! `cutter_governance.ed25519_verify` of migration V9) against ed25519-dalek's `verify_strict`
//! in Rust, on the same N signatures.
//!
//! Three timings, each over the same N valid signatures (deterministic keys and messages):
//! one statement per verification (what an approval check costs, round trip included), one
//! statement verifying all N (the server's compute alone), and dalek in this process. It prints
//! milliseconds per verification and the SQL/Rust ratios; a wrong answer is an error.
//!
//! Needs PostgreSQL at `CUTTER_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`),
//! superuser `postgres`, trust auth, as the live tests do; it makes its own database and drops
//! it at the end, also on error. Run with `cargo bench -p cutter-adapters --bench ed25519_sql`;
//! `ED25519_BENCH_N` (default 50) overrides N.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use cutter_testkit::external::ScratchDb;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

const V9: &str = include_str!("../migrations/V9__ed25519.sql");

/// dalek takes microseconds: repeat its pass this many times for a measurable duration.
const RUST_REPEAT: u32 = 200;

struct Signed {
    key: VerifyingKey,
    msg: Vec<u8>,
    sig: Signature,
}

fn signed(n: usize) -> Vec<Signed> {
    (0..n)
        .map(|i| {
            let seed: [u8; 32] = Sha256::new()
                .chain_update(b"cutter ed25519_sql bench key")
                .chain_update((i as u64).to_le_bytes())
                .finalize()
                .into();
            let sk = SigningKey::from_bytes(&seed);
            let msg = format!("approve run {i} of the bench, document {}", i * 7919).into_bytes();
            Signed {
                key: sk.verifying_key(),
                sig: sk.sign(&msg),
                msg,
            }
        })
        .collect()
}

fn ms_per(total: Duration, count: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / count as f64
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let n: usize = std::env::var("ED25519_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    ensure!(n > 0, "ED25519_BENCH_N must be positive");
    let all = signed(n);

    let db = ScratchDb::new("ed25519_bench")?;
    let url = db.url();
    let url = if url.contains('@') {
        url
    } else {
        format!("{url}?user=postgres")
    };
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .with_context(|| format!("connect to {}", db.name))?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA cutter_governance;\n{V9}"))
        .await
        .context("apply V9")?;

    let one = client
        .prepare("SELECT cutter_governance.ed25519_verify($1, $2, $3)")
        .await?;
    // The first call in a session compiles the PL/pgSQL functions; keep it out of the timing.
    let first = &all[0];
    let warm = Instant::now();
    let ok: bool = client
        .query_one(
            &one,
            &[
                &first.key.as_bytes().as_slice(),
                &first.msg,
                &first.sig.to_bytes().as_slice(),
            ],
        )
        .await?
        .try_get(0)?;
    let warm = warm.elapsed();
    ensure!(ok, "the warm-up signature was refused");

    // One statement (and one round trip, one transaction) per verification.
    let start = Instant::now();
    for s in &all {
        let ok: bool = client
            .query_one(
                &one,
                &[
                    &s.key.as_bytes().as_slice(),
                    &s.msg,
                    &s.sig.to_bytes().as_slice(),
                ],
            )
            .await?
            .try_get(0)?;
        ensure!(ok, "a valid signature was refused");
    }
    let sql_each = start.elapsed();

    // One statement for all of them.
    let keys: Vec<Vec<u8>> = all.iter().map(|s| s.key.as_bytes().to_vec()).collect();
    let msgs: Vec<Vec<u8>> = all.iter().map(|s| s.msg.clone()).collect();
    let sigs: Vec<Vec<u8>> = all.iter().map(|s| s.sig.to_bytes().to_vec()).collect();
    let start = Instant::now();
    let accepted: i64 = client
        .query_one(
            "SELECT count(*) FILTER (WHERE cutter_governance.ed25519_verify(k, m, s)) \
             FROM unnest($1::bytea[], $2::bytea[], $3::bytea[]) AS t(k, m, s)",
            &[&keys, &msgs, &sigs],
        )
        .await?
        .try_get(0)?;
    let sql_batch = start.elapsed();
    ensure!(
        accepted == n as i64,
        "{accepted} of {n} accepted in one statement"
    );

    // dalek, RUST_REPEAT passes over the same signatures.
    let start = Instant::now();
    for _ in 0..RUST_REPEAT {
        for s in &all {
            ensure!(s.key.verify_strict(&s.msg, &s.sig).is_ok(), "dalek refused");
        }
    }
    let rust = start.elapsed();

    let each = ms_per(sql_each, n);
    let batch = ms_per(sql_batch, n);
    let rust = ms_per(rust, n * RUST_REPEAT as usize);
    println!("Ed25519 verification, N = {n}");
    println!(
        "  first call of the session (compiles): {:8.3} ms",
        warm.as_secs_f64() * 1000.0
    );
    println!("  SQL, one statement each:  {each:8.3} ms/verification");
    println!("  SQL, one statement for N: {batch:8.3} ms/verification");
    println!("  Rust, ed25519-dalek:      {rust:8.4} ms/verification");
    println!("  ratio SQL each / Rust:    {:8.0}x", each / rust);
    println!("  ratio SQL batch / Rust:   {:8.0}x", batch / rust);
    drop(client);
    drop(db);
    Ok(())
}
