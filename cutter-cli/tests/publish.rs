//! Reports published to a knowledge-base endpoint over HTTP, against a local server: every
//! report arrives with the bearer token from the named variable; when the endpoint fails, the
//! report waits in the outbox, the run does not advance, and the next command delivers it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

const TOKEN: &str = "s3cret-publish-token";

#[derive(Default)]
struct Received {
    auth: Vec<String>,
    bodies: Vec<Value>,
}

/// A tiny HTTP/1.1 server: answers every POST with `status`, recording what it got.
fn server() -> (String, Arc<AtomicU16>, Arc<Mutex<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/reports", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(200));
    let got = Arc::new(Mutex::new(Received::default()));
    let (s, g) = (status.clone(), got.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut len, mut auth) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = line["authorization:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let code = s.load(Ordering::SeqCst);
            if code == 200 {
                let mut g = g.lock().unwrap();
                g.auth.push(auth);
                g.bodies
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, status, got)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn reports_are_published_and_an_undelivered_one_holds_the_run_until_delivered() {
    let (url, status, got) = server();
    let dir = tempfile::tempdir().unwrap();
    let cutter = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutter"))
            .args(args)
            .env("CUTTER_CONFIG", dir.path().join("cutter.toml"))
            .env("CUTTER_TEST_PUBLISH_TOKEN", TOKEN)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    assert!(cutter(&["init", "--dir", "."]).status.success());
    let config = std::fs::read_to_string(dir.path().join("cutter.toml"))
        .unwrap()
        .replacen(
            "url = \"\"\ntoken_env = \"\"",
            &format!("url = \"{url}\"\ntoken_env = \"CUTTER_TEST_PUBLISH_TOKEN\""),
            1,
        )
        .replace("retries = 3", "retries = 2");
    std::fs::write(dir.path().join("cutter.toml"), config).unwrap();
    std::fs::write(
        dir.path().join("doc.md"),
        "# Charter\nText.\n\n## One\nA.\n",
    )
    .unwrap();

    let out = cutter(&[
        "orchestrate",
        "cut",
        "doc.md",
        "--document-id",
        "PUB-1",
        "--mode",
        "dry-run",
        "--self-approve",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    {
        let g = got.lock().unwrap();
        let kinds: Vec<&str> = g.bodies.iter().filter_map(|b| b["kind"].as_str()).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "phase").count(),
            11,
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&"approval_request") && kinds.contains(&"closing"),
            "{kinds:?}"
        );
        assert!(
            g.auth.iter().all(|a| a == &format!("Bearer {TOKEN}")),
            "{:?}",
            g.auth
        );
    }
    assert!(!text(&out.stdout).contains(TOKEN) && !text(&out.stderr).contains(TOKEN));

    // The endpoint fails: the first report is kept, the run does not advance, exit 1.
    status.store(500, Ordering::SeqCst);
    let out = cutter(&[
        "orchestrate",
        "cut",
        "doc.md",
        "--document-id",
        "PUB-2",
        "--mode",
        "dry-run",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("HTTP 500 after 2 tries") && err.contains("outbox"),
        "{err}"
    );
    assert!(!err.contains(TOKEN));
    let outbox = dir.path().join("reports/outbox");
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["state"], "RUNNING", "{run}");
    assert_eq!(run["phases"].as_array().map(Vec::len), Some(0), "{run}");
    let id = run["run_id"].as_str().unwrap().to_string();

    // The endpoint is back: resume delivers the outbox first, then goes on to SG_1.
    status.store(200, Ordering::SeqCst);
    let before = got.lock().unwrap().bodies.len();
    let out = cutter(&["orchestrate", "resume", &id, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["state"], "AWAITING_CUT_AUTHORIZATION", "{run}");
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 0);
    {
        let g = got.lock().unwrap();
        let delivered: Vec<&Value> = g.bodies[before..].iter().collect();
        assert_eq!(
            delivered[0]["phase"], "source_pin",
            "the kept report goes first"
        );
        assert_eq!(delivered[0]["run"]["run_id"], id.as_str());
        assert!(delivered
            .iter()
            .all(|b| b["report_id"].as_str().is_some_and(|r| r.len() == 64)));
    }

    // Without the token variable, reporting fails, but nothing else depends on it: the
    // kill-switch and status still work.
    let bare = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutter"))
            .args(args)
            .env("CUTTER_CONFIG", dir.path().join("cutter.toml"))
            .env_remove("CUTTER_TEST_PUBLISH_TOKEN")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    assert!(bare(&["disarm", &id]).status.success());
    assert!(bare(&["orchestrate", "status", &id]).status.success());
}
