//! Guarantee 8, the stored side: what other hosts can read about a holder.
//! By default only host, pid, the program's name and an optional --label;
//! arguments (which often carry tokens) only with --record-args.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::support::*;

fn holder_key(k: &str) -> String {
    format!("{{{k}}}:redlock-run:holder")
}

/// Run `redlock-run OPTS -- COMMAND` whose command copies the stored holder
/// description (read from Redis while the lock is held) to `out`.
fn stored_description(server: &RedisServer, opts: &[&str], shell: bool, dir: &Path) -> Value {
    let k = key("desc");
    let out = dir.join("desc");
    let read = format!(
        "redis-cli -p {} GET '{}' > '{}'",
        server.port,
        holder_key(&k),
        out.display()
    );
    let mut cmd = rr(server);
    cmd.args(["--key", &k]).args(opts);
    if shell {
        cmd.args(["--shell", &format!("{read} # --token=SECRET123")]);
    } else {
        cmd.args(["--", "sh", "-c", &read, "--token=SECRET123"]);
    }
    let o = output(cmd.stdin(Stdio::null()));
    assert_exit(&o, 0);
    let text = std::fs::read_to_string(&out).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

#[test]
fn only_the_program_name_is_stored_unless_record_args() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let d = stored_description(&server, &[], false, dir.path());
    assert_eq!(d["command"], "sh", "{d}");
    assert!(!d.to_string().contains("SECRET123"), "{d}");
    assert!(d.get("label").is_none_or(Value::is_null), "{d}");

    let d = stored_description(&server, &[], true, dir.path());
    assert_eq!(d["command"], "sh -c", "{d}");
    assert!(!d.to_string().contains("SECRET123"), "{d}");

    let d = stored_description(&server, &["--record-args"], false, dir.path());
    let c = d["command"].as_str().unwrap();
    assert!(c.starts_with("sh -c ") && c.contains("SECRET123"), "{d}");
}

#[test]
fn the_label_round_trips_and_is_printed_escaped() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let label = "nightly\nreport \u{1b}[31m red";
    let d = stored_description(&server, &["--label", label], false, dir.path());
    assert_eq!(d["label"], label, "{d}");

    // status, text and JSON, while a holder with that label holds it.
    let k = key("label");
    let (h, _) = Holder::start(&server, &k, dir.path(), &["--label", label]);
    let (_, text) = status_text(&server, &k);
    assert!(text.contains("nightly\\nreport \\x1b[31m red"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    let (_, v) = status_json(&server, &k);
    assert_eq!(v["holder"]["label"], label, "{v}");
    assert_eq!(v["holder"]["command"], "sh", "{v}");
    h.finish();
}
