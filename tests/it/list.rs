//! Every lock at a glance: `redlock-run list` finds exactly the locks among
//! thousands of keys, stops at its cap with a note, shows what a quorum
//! agrees on, waits for a hung master once, and is 69 when nothing is
//! reachable.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// `list` in text form: the rows (header left out), each split on runs of
/// two or more blanks.
pub(crate) fn list_rows(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("KEY "), "no header in {text:?}");
    lines
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

fn list_json(urls: &[String], args: &[&str]) -> Vec<Value> {
    let o = Rr::urls(urls)
        .arg("list")
        .args(args)
        .arg("--json")
        .status(0)
        .run();
    match serde_json::from_str(stdout(&o).trim()) {
        Ok(Value::Array(a)) => a,
        other => panic!("list --json: {other:?}: {:?}", stdout(&o)),
    }
}

/// `redis-cli`-free bulk fill: `n` plain keys named `prefix:i`.
fn fill(server: &RedisServer, prefix: &str, n: usize) {
    let script = "for i = 1, tonumber(ARGV[2]) do redis.call('SET', ARGV[1] .. ':' .. i, i) end";
    let _: redis::Value = server.query(&["EVAL", script, "0", prefix, &n.to_string()]);
}

/// A lock held through the tool (its description beside it) written
/// straight into Redis, as a holder on another host would leave it.
fn fake_lock(server: &RedisServer, k: &str, pid: u32) {
    let token = format!("tok-{pid}");
    let info = serde_json::json!({
        "host": "elsewhere", "pid": pid, "command": "job",
        "since_ms": 1_700_000_000_000u64, "token": token,
    })
    .to_string();
    let _: () = server.query(&["SET", k, &token, "PX", "60000"]);
    let holder = format!("{{{k}}}:redlock-run:holder");
    let _: () = server.query(&["SET", &holder, &info, "PX", "60000"]);
}

/// A keyspace of 5,000 unrelated keys, three locks held through the tool,
/// one released lock (its fencing counter stays) and one lock taken by
/// another client: `list` shows exactly the three, or those matching the
/// glob; it walks the keyspace with SCAN and never sends KEYS.
#[test]
pub(crate) fn list_finds_exactly_the_locks_among_thousands_of_keys() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let p = key("list");
    let [a, b, c] = ["deploy-a", "deploy-b", "backup"].map(|n| format!("{p}-{n}"));
    fill(&server, &format!("{p}-junk"), 5000);
    // A run of a before its holder: its last run.
    Rr::on(&server)
        .args(["--key", &a, "--", "true"])
        .status(0)
        .run();
    let (ha, env_a) = Holder::start(&server, &a, dir.path(), &["--ttl", "20s"]);
    let (hb, _) = Holder::start(&server, &b, dir.path(), &["--ttl", "20s"]);
    let (hc, _) = Holder::start(&server, &c, dir.path(), &["--ttl", "20s"]);
    Rr::on(&server)
        .args(["--key", &format!("{p}-done"), "--", "true"])
        .status(0)
        .run();
    let _: () = server.query(&["SET", &format!("{p}-other"), "x", "PX", "60000"]);
    // A waiter on a, queued.
    let waiter = spawn_piped(rr(&server).args(["--key", &a, "--timeout", "30s", "--", "true"]));
    wait_until("the waiter queued", Duration::from_secs(10), || {
        queued(&server, &a) == 1
    });
    let _: () = server.query(&["CONFIG", "RESETSTAT"]);

    let o = Rr::on(&server).arg("list").status(0).stderr("").run();
    let text = stdout(&o);
    let rows = list_rows(&text);
    let listed: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(listed, [&c, &a, &b], "{text}");
    for (row, h) in rows.iter().zip([&hc, &ha, &hb]) {
        assert!(row[1].contains(&format!("pid {} (sh)", h.pid())), "{row:?}");
        assert!(humantime::parse_rfc3339(&row[2]).is_ok(), "since: {row:?}");
        assert!(row[3].ends_with('s'), "ttl: {row:?}");
    }
    assert_eq!(rows[1][4], env_a.fencing.to_string(), "{text}");
    assert_eq!(rows[1][5], "1", "one waiter on {a}: {text}");
    assert_eq!(rows[0][5], "0", "{text}");
    assert!(rows[1][6].starts_with("ok 20"), "a's last run: {text}");
    assert_eq!(rows[0][6], "-", "no run of c ended yet: {text}");

    let stats: String = server.query(&["INFO", "commandstats"]);
    assert!(!stats.contains("cmdstat_keys:"), "KEYS was sent:\n{stats}");
    let scans: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_scan:calls="))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no SCAN in:\n{stats}"));
    assert!(scans >= 5, "5,000 keys walked in {scans} SCAN call(s)");

    // The glob, and the JSON form: one array of status-shaped objects.
    let urls = [server.url()];
    let all = list_json(&urls, &[&format!("{p}-deploy-*")]);
    let keys: Vec<&str> = all.iter().map(|v| v["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [&a, &b]);
    let o = Rr::on(&server)
        .args(["status", "--key", &a, "--json"])
        .run();
    let status: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let mut fields: Vec<&String> = all[0].as_object().unwrap().keys().collect();
    fields.retain(|f| *f != "waiters");
    let want: Vec<&String> = status.as_object().unwrap().keys().collect();
    assert_eq!(fields, want, "{} vs {status}", all[0]);
    assert_eq!(all[0]["holder"], status["holder"]);
    assert_eq!(all[0]["fencing_token"], status["fencing_token"]);
    assert_eq!(all[0]["waiters"], 1, "{}", all[0]);
    assert!(all.iter().all(|v| v["held"] == true));

    // Nothing matches: exit 0, an empty array.
    assert!(list_json(&urls, &["no-such-*"]).is_empty());
    Rr::on(&server)
        .args(["list", "no-such-*"])
        .status(0)
        .stdout_has("no lock")
        .run();

    // Released: gone from the list.
    hb.finish();
    let keys: Vec<String> = list_json(&urls, &[])
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, [c.clone(), a.clone()]);
    drop(waiter);
}

/// The cap: `--max` locks at most, and a note on stderr (never in the
/// JSON) when there were more; 1,000 by default.
#[test]
fn list_stops_at_the_cap_with_a_note() {
    let server = RedisServer::start();
    let p = key("cap");
    for i in 0..1001 {
        fake_lock(&server, &format!("{p}-{i:04}"), 1000 + i);
    }
    fill(&server, &format!("{p}-junk"), 2000);
    let o = Rr::on(&server).args(["list", "--max", "3"]).status(0).run();
    let rows = list_rows(&stdout(&o));
    let listed: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    // Three of the locks (which three is up to SCAN's order), sorted.
    assert!(listed.is_sorted(), "{listed:?}");
    for (l, row) in listed.iter().zip(&rows) {
        let i: u32 = l
            .strip_prefix(&format!("{p}-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a lock: {l}"));
        assert!(i < 1001, "{l}");
        assert!(
            row[1].contains(&format!("elsewhere pid {} (job)", 1000 + i)),
            "{row:?}"
        );
    }
    assert!(
        stderr(&o).contains("note: showing 3 locks"),
        "{}",
        stderr(&o)
    );

    // Large outputs: read while the process runs.
    let big = |args: &[&str]| {
        output_with_input(
            rr(&server).arg("list").args(args),
            Vec::new(),
            Duration::from_secs(60),
        )
    };
    let o = big(&["--json"]);
    assert_exit(&o, 0);
    let all: Vec<Value> = serde_json::from_str(stdout(&o).trim()).expect("stdout is JSON alone");
    assert_eq!(all.len(), 1000, "the default cap");
    assert!(stderr(&o).contains("(--max 1000)"), "{}", stderr(&o));

    let o = big(&["--max", "1001"]);
    assert_eq!(list_rows(&stdout(&o)).len(), 1001);
    assert_eq!(stderr(&o), "", "not capped");

    Rr::on(&server).args(["list", "--max", "0"]).status(2).run();
}

/// Three masters: a lock held on a quorum is listed (with how many masters
/// agree), one held on a single master is not; with one master down the
/// quorum still answers; with two down, 69.
#[test]
fn list_over_a_quorum_shows_what_a_quorum_agrees_on() {
    let mut servers = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let dir = tempfile::tempdir().unwrap();
    let k = key("list-quorum");
    let minority = key("list-minority");
    fake_lock(&servers[0], &minority, 7);
    let ready = dir.path().join("ready");
    let mut holder = rr_urls(&urls)
        .args([
            "--key",
            &k,
            "--",
            "sh",
            "-c",
            "echo $REDLOCK_FENCING_TOKEN > \"$0\"; read x",
        ])
        .arg(&ready)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fencing: u64 = wait_for_file(&ready, Duration::from_secs(10))
        .trim()
        .parse()
        .unwrap();

    let o = Rr::urls(&urls).arg("list").status(0).run();
    let rows = list_rows(&stdout(&o));
    assert_eq!(rows.len(), 1, "{}", stdout(&o));
    assert_eq!(rows[0][0], k);
    assert!(
        rows[0][1].contains(&format!("pid {}", holder.id())),
        "{rows:?}"
    );
    assert_eq!(rows[0][4], fencing.to_string());
    assert_eq!(rows[0][7], "3/3", "{rows:?}");
    let all = list_json(&urls, &[]);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["quorum"], 2);
    assert_eq!(all[0]["masters"].as_array().map(Vec::len), Some(3));

    servers[2].kill();
    let o = Rr::urls(&urls).arg("list").status(0).run();
    let rows = list_rows(&stdout(&o));
    assert_eq!(rows.len(), 1, "{}", stdout(&o));
    assert_eq!(rows[0][7], "2/3", "{rows:?}");

    servers[1].kill();
    Rr::urls(&urls)
        .args(["list", "--json"])
        .status(69)
        .stdout("")
        .stderr_has("cannot list locks")
        .run();
    drop(holder.stdin.take());
    let _ = wait_output(holder, Duration::from_secs(20));
}

/// One of three masters hangs (SIGSTOP): its scan times out once, and
/// the locks are then read from the masters that answered, not each after
/// a timeout of its own (4 locks took 5 s + 4 x 5 s that way).
#[test]
fn list_with_a_hung_master_waits_for_it_once() {
    let servers = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let p = key("list-hung");
    for i in 0..4 {
        for s in &servers {
            fake_lock(s, &format!("{p}-{i}"), 100 + i);
        }
    }
    servers[2].pause();
    let start = std::time::Instant::now();
    let o = Rr::urls(&urls).arg("list").run();
    let took = start.elapsed();
    servers[2].resume();
    assert_exit(&o, 0);
    let rows = list_rows(&stdout(&o));
    assert_eq!(rows.len(), 4, "{}", stdout(&o));
    assert!(rows.iter().all(|r| r[7] == "2/3"), "{rows:?}");
    // One I/O timeout (5 s) for the hung master, plus slack.
    assert!(took < Duration::from_secs(12), "list took {took:?}");
}

/// Redis down: exit 69 and one error line, for text and JSON.
#[test]
fn list_of_unreachable_redis_is_69() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    for json in [false, true] {
        let mut cmd = rr_urls(std::slice::from_ref(&url));
        cmd.arg("list");
        if json {
            cmd.arg("--json");
        }
        let o = output(&mut cmd);
        assert_exit(&o, 69);
        assert_eq!(stdout(&o), "");
        assert!(
            stderr(&o).starts_with("redlock-run: error: cannot list locks"),
            "{}",
            stderr(&o)
        );
    }
}
