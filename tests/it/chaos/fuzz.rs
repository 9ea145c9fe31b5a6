//! CLI fuzz: a few hundred seeded, random command lines (options and
//! environment, valid and garbage: durations huge, negative or unparsable,
//! URLs with passwords, users, dbs, unix sockets or nonsense, keys with
//! spaces, newlines, unicode, braces or 100 kB, -E values, both --shell
//! forms) against real servers. Whatever the input:
//!
//! - no panic (no "panicked" on stderr, no exit 101, no death by signal),
//!   and an exit code from the documented set;
//! - exit 2 means nothing touched Redis (no connection counted by any
//!   server) and nothing on stdout;
//! - the command never runs without the lock: it records whether
//!   REDLOCK_TOKEN was the key's value on a quorum of the masters at that
//!   moment (read with redis-cli), and when it ran, the exit code is its own;
//! - nothing is left in Redis with a TTL (except with --min-hold);
//! - a command line built only from valid values runs the command.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Rng, serial};
use crate::support::{RedisServer, bin};

const SEED: u64 = 0xf022_0001;
const CASES: usize = 300;
/// A case that takes longer than this hangs.
const LIMIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "p@ss:w/rd";

/// Where a URL points, and how redis-cli reaches the same place.
#[derive(Debug, Clone)]
struct Target {
    server: usize,
    db: u32,
    cli: Vec<String>,
}

#[derive(Debug, Clone)]
struct Url {
    url: String,
    /// Reachable with working credentials.
    target: Option<Target>,
    /// Connection attempts can take a while (TLS to a plain server).
    slow: bool,
}

struct Servers {
    servers: Vec<RedisServer>,
    admin: Vec<redis::Connection>,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Servers {
    fn start() -> Servers {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("r.sock");
        let servers = vec![
            RedisServer::start_with(&[
                "--unixsocket",
                sock.to_str().unwrap(),
                "--unixsocketperm",
                "700",
            ]),
            RedisServer::start(),
            RedisServer::start(),
            RedisServer::start(),
        ];
        // Server 3 needs a password, or alice's: set after start, since
        // the readiness check pings without one.
        let mut c = servers[3].conn();
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("alice")
            .arg("on")
            .arg(">wonderland")
            .arg("~*")
            .arg("&*")
            .arg("+@all")
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(PASSWORD)
            .query(&mut c)
            .unwrap();
        let admin = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let url = if i == 3 {
                    format!("redis://:{}@127.0.0.1:{}", encode(PASSWORD), s.port)
                } else {
                    s.url()
                };
                let c = redis::Client::open(url)
                    .unwrap()
                    .get_connection_with_timeout(Duration::from_secs(2))
                    .unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                c
            })
            .collect();
        Servers {
            servers,
            admin,
            sock,
            _dir: dir,
        }
    }

    fn cli(&self, server: usize, db: u32, user: Option<(&str, &str)>) -> Vec<String> {
        let mut v = vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.servers[server].port.to_string(),
            "-n".into(),
            db.to_string(),
        ];
        if let Some((u, p)) = user {
            if !u.is_empty() {
                v.extend(["--user".into(), u.into()]);
            }
            v.extend(["--pass".into(), p.into(), "--no-auth-warning".into()]);
        }
        v
    }

    /// Good URLs: every way of reaching a server that should work.
    fn good(&self, rng: &mut Rng) -> Url {
        let db = if rng.chance(0.5) {
            0
        } else {
            rng.below(16) as u32
        };
        let s = rng.range(0, 2) as usize;
        let port = self.servers[s].port;
        let p3 = self.servers[3].port;
        let sock = self.sock.display().to_string();
        let (url, server, db, cli) = match rng.below(6) {
            0 => (
                format!("redis://127.0.0.1:{port}"),
                s,
                0,
                self.cli(s, 0, None),
            ),
            1 => (
                format!("redis://127.0.0.1:{port}/{db}"),
                s,
                db,
                self.cli(s, db, None),
            ),
            2 => (format!("unix://{sock}"), 0, 0, vec!["-s".into(), sock]),
            3 => (
                format!("redis+unix://{sock}?db={db}"),
                0,
                db,
                vec!["-s".into(), sock, "-n".into(), db.to_string()],
            ),
            4 => (
                format!("redis://:{}@127.0.0.1:{p3}/{db}", encode(PASSWORD)),
                3,
                db,
                self.cli(3, db, Some(("", PASSWORD))),
            ),
            _ => (
                format!("redis://alice:wonderland@127.0.0.1:{p3}"),
                3,
                0,
                self.cli(3, 0, Some(("alice", "wonderland"))),
            ),
        };
        Url {
            url,
            target: Some(Target { server, db, cli }),
            slow: false,
        }
    }

    /// URLs that parse but cannot work (refused, wrong password, no such
    /// db, TLS to a plain server), and garbage that must be refused.
    fn bad(&self, rng: &mut Rng) -> Url {
        let p0 = self.servers[0].port;
        let p3 = self.servers[3].port;
        let choices = [
            format!("redis://127.0.0.1:{}", closed_port()),
            format!("redis://:wrong@127.0.0.1:{p3}"),
            format!("redis://127.0.0.1:{p3}"),
            format!("redis://alice:nope@127.0.0.1:{p3}"),
            format!("redis://:secret@127.0.0.1:{p0}"),
            format!("redis://127.0.0.1:{p0}/16"),
            format!("rediss://127.0.0.1:{p0}"),
            "unix:///nonexistent/redis.sock".into(),
            String::new(),
            " ".into(),
            "localhost:6379".into(),
            "http://127.0.0.1".into(),
            "redis://".into(),
            "redis://[::1".into(),
            "redis://127.0.0.1:99999".into(),
            format!("redis://u:pa ss@127.0.0.1:{p0}"),
            format!("redis://127.0.0.1:{p0}/notanumber"),
            "unix://".into(),
            "redis://:hunter2@".into(),
            "r\u{e9}dis://h\u{f6}st".into(),
            format!("redis://127.0.0.1:{p0}\n"),
        ];
        let url = rng.pick(&choices).clone();
        Url {
            slow: url.starts_with("rediss"),
            url,
            target: None,
        }
    }
}

/// Percent-encode a password for a URL.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    crate::support::free_port()
}

fn duration(rng: &mut Rng, valid: &[&str]) -> String {
    const GARBAGE: &[&str] = &[
        "-5s",
        "5",
        "abc",
        "",
        " ",
        "1e3ms",
        "1.5s",
        "0x10s",
        "NaN",
        "∞",
        "18446744073709551615s",
        "99999999999999999999999s",
        "584542046090y",
        "300000000000y",
        "100y",
        "10y 1s",
        "1ns",
        "0ns",
        "5 parsecs",
        "1h -5m",
        "\n",
        "9223372036854775807ms",
    ];
    if rng.chance(0.3) {
        rng.pick(GARBAGE).to_string()
    } else {
        rng.pick(valid).to_string()
    }
}

fn key(rng: &mut Rng, n: usize) -> String {
    match rng.below(10) {
        0 => format!("with space {n}"),
        1 => format!("new\nline {n}"),
        2 => format!("ключ-🔒-{n}"),
        3 => format!("{{brace}}{n}"),
        4 => format!("{{{n}"),
        5 => format!("}}{n}*?[x]"),
        6 => format!("{n}{}", "x".repeat(100_000)),
        7 => format!("tab\t{n}\r"),
        _ => format!("fuzz-{n}"),
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command: look up the key on every master with redis-cli, append
/// "ok" to the marker when a quorum holds REDLOCK_TOKEN, "bad N" if not.
fn script(targets: &[Target], marker: &Path, code: i32) -> String {
    let mut s = String::from("n=0\n");
    for t in targets {
        let args: Vec<String> = t.cli.iter().map(|a| shell_quote(a)).collect();
        s.push_str(&format!(
            "v=$(redis-cli {} --raw get \"$REDLOCK_KEY\" 2>/dev/null)\n\
             [ \"$v\" = \"$REDLOCK_TOKEN\" ] && n=$((n+1))\n",
            args.join(" ")
        ));
    }
    let quorum = targets.len() / 2 + 1;
    s.push_str(&format!(
        "if [ $n -ge {quorum} ]; then echo ok >> {m}; else echo \"bad $n\" >> {m}; fi\nexit {code}\n",
        m = shell_quote(&marker.display().to_string())
    ));
    s
}

/// One generated case.
struct Case {
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    /// Masters the command checks (all good URLs).
    targets: Vec<Target>,
    /// The command's own exit code.
    code: i32,
    conflict: Option<i32>,
    min_hold: bool,
    /// Built only from valid values: the command must run.
    sane: bool,
    prehold: bool,
}

fn generate(s: &Servers, rng: &mut Rng, n: usize, dir: &Path) -> Case {
    let sane = rng.chance(0.35);
    let p = |rng: &mut Rng, x: f64| !sane && rng.chance(x);
    let mut args: Vec<OsString> = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let push = |a: &mut Vec<OsString>, k: &str, v: String| {
        a.push(k.into());
        a.push(v.into());
    };

    // Masters: one, or a quorum; sometimes a bad one among them.
    let count = *rng.pick(&[1, 1, 1, 2, 3]);
    let mut urls: Vec<Url> = (0..count).map(|_| s.good(rng)).collect();
    if p(rng, 0.35) {
        let i = rng.below(count as u64) as usize;
        urls[i] = s.bad(rng);
    }
    let reachable = urls.iter().filter(|u| u.target.is_some()).count() > count / 2;
    let slow = urls.iter().any(|u| u.slow);
    let joined: Vec<String> = urls.iter().map(|u| u.url.clone()).collect();
    if rng.chance(0.5) {
        env.push(("REDLOCK_REDIS".into(), joined.join(",")));
    } else {
        for u in &joined {
            push(
                &mut args,
                if rng.chance(0.5) { "-r" } else { "--redis" },
                u.clone(),
            );
        }
    }

    let k = if p(rng, 0.05) {
        String::new()
    } else {
        key(rng, n)
    };
    match rng.below(3) {
        0 => env.push(("REDLOCK_KEY".into(), k.clone())),
        1 => args.push(format!("--key={k}").into()),
        _ => push(&mut args, "-k", k.clone()),
    }

    let ttl_valid: &[&str] = if slow {
        &["1s", "2s"]
    } else {
        &["1s", "2s", "30s", "10y"]
    };
    let ttl = if sane {
        rng.pick(ttl_valid).to_string()
    } else {
        duration(rng, ttl_valid)
    };
    if rng.chance(0.5) {
        env.push(("REDLOCK_TTL".into(), ttl.clone()));
    } else {
        push(&mut args, "--ttl", ttl.clone());
    }
    // Waiting is bounded when a master cannot answer.
    let timeouts: &[&str] = if reachable && !slow {
        &["0s", "1s", "inf", "forever", "10y", "1h 30m"]
    } else {
        &["0s", "300ms"]
    };
    let timeout = if sane {
        rng.pick(timeouts).to_string()
    } else {
        duration(rng, timeouts)
    };
    let mut waits = false;
    if rng.chance(0.7) {
        waits = timeout != "0s";
        if rng.chance(0.5) {
            env.push(("REDLOCK_TIMEOUT".into(), timeout));
        } else {
            push(&mut args, "-t", timeout);
        }
    }
    if rng.chance(0.3) {
        let v = if sane {
            "100ms".into()
        } else {
            duration(rng, &["100ms", "200ms", "2s"])
        };
        push(&mut args, "--refresh", v);
    }
    if rng.chance(0.3) {
        let v = if sane {
            "50ms".into()
        } else {
            duration(rng, &["50ms", "1s", "0s"])
        };
        push(&mut args, "--kill-after", v);
    }
    let mut min_hold = false;
    if rng.chance(0.2) {
        let v = if sane {
            "300ms".into()
        } else {
            duration(rng, &["0s", "300ms", "1s"])
        };
        min_hold = true;
        push(&mut args, "--min-hold", v);
    }
    let mut conflict = None;
    if rng.chance(0.3) {
        let e = if sane {
            rng.below(256).to_string()
        } else {
            rng.pick(&["0", "1", "75", "200", "255", "256", "-1", "x", "", "1e2"])
                .to_string()
        };
        conflict = e.parse::<u8>().ok().map(i32::from);
        push(&mut args, "-E", e);
    }
    // -v and -q conflict (exit 2): only chaotic cases mix them.
    let mut verbose = false;
    for (chance, flag) in [(0.2, "-v"), (0.1, "-vv"), (0.1, "-q")] {
        if rng.chance(chance) && !(sane && flag == "-q" && verbose) {
            verbose |= flag != "-q";
            args.push(flag.into());
        }
    }
    if rng.chance(0.15) {
        let f = if sane {
            "json"
        } else {
            rng.pick(&["json", "text", "xml"])
        };
        push(&mut args, "--log-format", f.into());
    }
    if p(rng, 0.1) {
        args.push(
            rng.pick(&["--bogus", "--ttl", "-Z", "--", "--timeout=1s"])
                .into(),
        );
        env.push((
            "REDLOCK_LOG".into(),
            rng.pick(&["trace", "nonsense[[", "debug"]).to_string(),
        ));
    }

    // The command, in one of its forms.
    let targets: Vec<Target> = urls.iter().filter_map(|u| u.target.clone()).collect();
    let code = *rng.pick(&[0, 0, 1, 3, 42, 255]);
    let marker = dir.join(format!("marker-{n}"));
    let path = dir.join(format!("case-{n}.sh"));
    let body = script(&targets, &marker, code);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sh_line = format!("sh {}", shell_quote(&path.display().to_string()));
    let forms = if sane { 5 } else { 10 };
    match rng.below(forms) {
        0 => args.extend(["--".into(), "sh".into(), path.clone().into()]),
        1 => args.extend(["--".into(), path.clone().into()]),
        2 => args.extend(["--shell".into(), sh_line.into()]),
        3 => args.extend(["-c".into(), body.into()]),
        4 => args.push(format!("--shell={sh_line}").into()),
        5 => args.extend(["--shell".into(), sh_line.into(), "--".into(), "true".into()]),
        6 => {}
        7 => args.extend(["--".into(), "/nonexistent/command".into()]),
        8 => {
            let f = dir.join(format!("noexec-{n}"));
            std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
            args.extend(["--".into(), f.into()]);
        }
        _ => args.extend(["--".into(), "".into()]),
    }
    Case {
        args,
        env,
        targets,
        code,
        conflict,
        min_hold,
        sane: sane && reachable,
        prehold: reachable && rng.chance(0.15) && (!sane || waits),
    }
}

fn info_i64(c: &mut redis::Connection, section: &str, field: &str) -> i64 {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Keys with a TTL, over every db (INFO keyspace's `expires=`).
fn expiring(c: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("keyspace").query(c).unwrap();
    info.lines()
        .filter_map(|l| l.split("expires=").nth(1))
        .filter_map(|v| v.split(',').next()?.parse::<i64>().ok())
        .sum()
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
    let (mut ran, mut sane_cases) = (0, 0);
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
            .map(|c| info_i64(c, "stats", "total_connections_received"))
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

        let allowed = |c: i32| {
            [0, 1, 2, 69, 70, 75, 126, 127].contains(&c)
                || Some(c) == case.conflict
                || c == case.code
                || (129..=192).contains(&c)
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
        let marker = std::fs::read_to_string(dir.path().join(format!("marker-{n}")));
        if code == Some(2) {
            if !out.stdout.is_empty() {
                bad("usage error with output on stdout".into());
            }
            let after: Vec<i64> = admin
                .iter_mut()
                .map(|c| info_i64(c, "stats", "total_connections_received"))
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
        "chaos cli fuzz: {CASES} cases in {:.1} s, command ran in {ran} ({sane_cases} valid-only); exit codes {codes:?}",
        started.elapsed().as_secs_f64()
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

/// A case, printable for reproduction (long keys shortened).
fn show(c: &Case) -> String {
    let short = |s: &str| {
        if s.len() > 80 {
            format!(
                "{}…({} bytes)",
                s.chars().take(40).collect::<String>(),
                s.len()
            )
        } else {
            s.to_string()
        }
    };
    let env: Vec<String> = c
        .env
        .iter()
        .map(|(k, v)| format!("{k}={:?}", short(v)))
        .collect();
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| format!("{:?}", short(&a.to_string_lossy())))
        .collect();
    format!("{} redlock-run {}", env.join(" "), args.join(" "))
}
