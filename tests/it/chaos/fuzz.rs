//! CLI fuzz: a few hundred seeded, random command lines (options and
//! environment, valid and garbage: durations huge, negative or unparsable,
//! URLs with passwords, users, dbs, unix sockets or nonsense, keys with
//! spaces, newlines, unicode, braces or 100 kB, -E values, both --shell
//! forms) against real servers. Whatever the input:
//!
//! - no panic (no "panicked" on stderr, no exit 101, no death by signal),
//!   and an exit code from the documented set that fits the case (2, 126
//!   and 127 only for a line with something invalid in it);
//! - a line with a value no option accepts (garbage durations, -E 256, an
//!   empty key, -v with -q, no command, ...) exits 2; a line built only
//!   from valid values never does;
//! - exit 2 means nothing touched Redis (no connection counted by any
//!   server) and nothing on stdout;
//! - the command never runs without the lock: it records whether
//!   REDLOCK_TOKEN was the key's value on a quorum of the masters at that
//!   moment (read with redis-cli), and when it ran, the exit code is its own;
//! - nothing is left in Redis with a TTL (except with --min-hold);
//! - a command line built only from valid values runs the command.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fuzz_cases::{generate, show};
use super::fuzz_servers::Servers;
use super::{Rng, serial};
use crate::support::{bin, info_i64};

const SEED: u64 = 0xf022_0001;
const CASES: usize = 300;
/// A case that takes longer than this hangs.
const LIMIT: Duration = Duration::from_secs(10);

/// Keys with a TTL, over every db (INFO keyspace's `expires=`).
fn expiring(c: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("keyspace").query(c).unwrap();
    let dbs: Vec<i64> = info
        .lines()
        .filter(|l| {
            l.split("expires=")
                .nth(1)
                .is_some_and(|v| !v.starts_with('0'))
        })
        .filter_map(|l| l.strip_prefix("db")?.split(':').next()?.parse().ok())
        .collect();
    let mut n = 0;
    for db in dbs {
        let _: () = redis::cmd("SELECT").arg(db).query(c).unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).unwrap();
        for k in keys {
            // The last few released tokens (a retried release recognises
            // its own) outlive the lock by design, for 30 s.
            if k.ends_with(":redlock-run:released-tokens") {
                continue;
            }
            let pttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            if pttl > 0 {
                n += 1;
            }
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
    n
}

#[test]
fn chaos_cli_fuzz_never_panics_never_runs_unlocked_never_leaves_a_lock() {
    let _one = serial();
    let mut s = Servers::start();
    let mut admin = std::mem::take(&mut s.admin);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(SEED);
    let mut failures: Vec<String> = Vec::new();
    let mut codes: std::collections::BTreeMap<String, usize> = Default::default();
    let (mut ran, mut sane_cases, mut refused) = (0, 0, 0);
    let started = Instant::now();
    for n in 0..CASES {
        let case = generate(&s, &mut rng, n, dir.path());
        let key = case
            .env
            .iter()
            .find(|(k, _)| k == "REDLOCK_KEY")
            .map(|(_, v)| v.clone());
        let key = key.or_else(|| {
            case.args.iter().enumerate().find_map(|(i, a)| {
                let a = a.to_str()?;
                if let Some(k) = a.strip_prefix("--key=") {
                    return Some(k.to_string());
                }
                (a == "-k").then(|| case.args.get(i + 1)?.to_str().map(String::from))?
            })
        });
        if case.prehold {
            if let Some(k) = &key {
                for t in &case.targets {
                    let c = &mut admin[t.server];
                    let _: redis::RedisResult<()> = redis::pipe()
                        .cmd("SELECT")
                        .arg(t.db)
                        .cmd("SET")
                        .arg(k)
                        .arg("foreign")
                        .arg("PX")
                        .arg(300)
                        .cmd("SELECT")
                        .arg(0)
                        .query(c);
                }
            }
        }
        let conns: Vec<i64> = admin
            .iter_mut()
            .map(|c| info_i64(c, "stats", "total_connections_received").unwrap_or(0))
            .collect();

        let mut cmd = Command::new(bin());
        for v in [
            "REDLOCK_KEY",
            "REDLOCK_REDIS",
            "REDLOCK_TIMEOUT",
            "REDLOCK_TTL",
            "REDLOCK_LOG",
        ] {
            cmd.env_remove(v);
        }
        cmd.args(&case.args)
            .envs(case.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path());
        let t = Instant::now();
        let out = run(&mut cmd, dir.path(), n);
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.and_then(|s| s.code());
        let label = match out.status {
            None => "hung".to_string(),
            Some(s) => code.map_or_else(|| format!("signal {:?}", s.signal()), |c| c.to_string()),
        };
        *codes.entry(label.clone()).or_default() += 1;
        let mut bad = |what: String| {
            failures.push(format!(
                "case {n}: {what} (exit {label}, {took:?}): {}\n      stderr: {}",
                show(&case),
                err.lines().take(4).collect::<Vec<_>>().join(" | ")
            ))
        };

        // The command's own code; the conflict code (75 unless -E); 69
        // (unreachable, refused writes); 70 (lost); and only for a line
        // with something invalid in it, 2 (usage) and 126/127 (a program
        // that cannot run). No signal codes: nothing here signals a run.
        let allowed = |c: i32| {
            c == case.code
                || c == case.conflict.unwrap_or(75)
                || [69, 70].contains(&c)
                || (!case.sane && [2, 126, 127].contains(&c))
        };
        match (out.status, code) {
            (None, _) => bad(format!("hung: still running after {LIMIT:?}, killed")),
            (Some(st), None) => bad(format!("killed by signal {:?}", st.signal())),
            (_, Some(101)) => bad("exit 101 (panic)".into()),
            (_, Some(c)) if !allowed(c) => bad(format!("undocumented exit code {c}")),
            _ => {}
        }
        if err.contains("panicked") {
            bad("panicked".into());
        }
        if !case.must_refuse.is_empty() && code != Some(2) {
            bad(format!(
                "invalid input ({}) not refused with 2",
                case.must_refuse.join(", ")
            ));
        }
        if case.must_refuse.is_empty() && case.sane && code == Some(2) {
            bad("a valid command line refused as bad usage (2)".into());
        }
        if !case.must_refuse.is_empty() {
            refused += 1;
        }
        let marker = std::fs::read_to_string(dir.path().join(format!("marker-{n}")));
        if code == Some(2) {
            if !out.stdout.is_empty() {
                bad("usage error with output on stdout".into());
            }
            let after: Vec<i64> = admin
                .iter_mut()
                .map(|c| info_i64(c, "stats", "total_connections_received").unwrap_or(0))
                .collect();
            if after != conns {
                bad(format!(
                    "usage error, yet Redis saw a connection ({conns:?} -> {after:?})"
                ));
            }
            if marker.is_ok() {
                bad("usage error, yet the command ran".into());
            }
        }
        match &marker {
            Ok(m) => {
                ran += 1;
                if m.trim() != "ok" {
                    bad(format!("the command ran without holding the lock: {m:?}"));
                }
                if code != Some(case.code) {
                    bad(format!(
                        "the command exited {} but redlock-run {code:?}",
                        case.code
                    ));
                }
            }
            Err(_) if case.sane => bad("a valid command line did not run the command".into()),
            Err(_) => {}
        }
        if case.sane {
            sane_cases += 1;
        }

        // Nothing with a TTL may be left (the foreign pre-hold aside).
        for t in &case.targets {
            if let Some(k) = &key {
                let _: redis::RedisResult<()> = redis::pipe()
                    .cmd("SELECT")
                    .arg(t.db)
                    .cmd("EVAL")
                    .arg("if redis.call('GET', KEYS[1]) == 'foreign' then redis.call('DEL', KEYS[1]) end")
                    .arg(1)
                    .arg(k)
                    .cmd("SELECT")
                    .arg(0)
                    .query(&mut admin[t.server]);
            }
        }
        // (A run we had to SIGKILL could not clean up after itself.)
        let left: Vec<i64> = admin.iter_mut().map(expiring).collect();
        let excused = (case.min_hold && marker.is_ok()) || out.status.is_none();
        if left.iter().any(|&l| l > 0) && !excused {
            bad(format!("keys with a TTL left behind per server: {left:?}"));
        }
        for c in admin.iter_mut() {
            let _: () = redis::cmd("FLUSHALL").query(c).unwrap();
        }
    }
    eprintln!(
        "chaos cli fuzz: {CASES} cases in {:.1} s, command ran in {ran} ({sane_cases} valid-only), \
         {refused} must be refused; exit codes {codes:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        sane_cases >= CASES / 5 && refused >= CASES / 5,
        "too few valid ({sane_cases}) or certainly invalid ({refused}) cases of {CASES}"
    );
    assert!(
        failures.is_empty(),
        "{} of {CASES} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

struct Out {
    /// None: it hung and was killed.
    status: Option<std::process::ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Run to completion with stdout and stderr in files (a pipe could fill up
/// with a 100 kB key in every debug line); killed by PID after LIMIT.
fn run(cmd: &mut Command, dir: &Path, n: usize) -> Out {
    let (o, e) = (dir.join(format!("out-{n}")), dir.join(format!("err-{n}")));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .expect("spawn redlock-run");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    Out {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    }
}
