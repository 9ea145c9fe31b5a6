//! Passwords: special characters in them work, and no part of one is ever
//! printed (docs/guarantees.md, guarantee 9), whatever the URL looks like,
//! wherever it comes from, at every log level.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::*;

/// The characters that used to break the URL list or the redaction.
const SPECIALS: [char; 5] = ['/', ',', '@', ':', '#'];

/// The two halves of every test password: neither may ever be printed.
const PARTS: [&str; 2] = ["Pa55", "w0rdX"];

fn password(special: char) -> String {
    format!("{}{special}{}", PARTS[0], PARTS[1])
}

/// `password` with its special character percent-encoded.
fn encoded(special: char) -> String {
    format!("{}%{:02X}{}", PARTS[0], u32::from(special), PARTS[1])
}

/// The password as it can stand in a URL's userinfo: raw where the URL
/// parser accepts it, percent-encoded where it would end the authority.
fn in_userinfo(special: char) -> String {
    match special {
        '/' | '#' => encoded(special),
        _ => password(special),
    }
}

fn assert_no_secret(o: &Output, case: &str) {
    let (out, err) = (stdout(o), stderr(o));
    for part in PARTS {
        assert!(
            !out.contains(part) && !err.contains(part),
            "{case}: {part:?} was printed\nstdout:\n{out}\nstderr:\n{err}"
        );
    }
}

/// A comma in a password works in REDLOCK_REDIS (the list is split only
/// where a new URL begins) and in --redis (never split); so do the other
/// special characters, raw where a URL allows them, else percent-encoded.
#[test]
fn special_characters_in_passwords_authenticate() {
    for special in SPECIALS {
        let server = RedisServer::start_with_password(&password(special));
        let url = format!(
            "redis://:{}@127.0.0.1:{}",
            in_userinfo(special),
            server.port
        );
        let k = key("auth");
        let env =
            output(rr_urls(std::slice::from_ref(&url)).args(["-vvv", "--key", &k, "--", "true"]));
        let flag = Rr::urls(&[])
            .args(["--redis", &url, "-vvv", "--key", &k, "--", "true"])
            .run();
        for (how, o) in [("REDLOCK_REDIS", env), ("--redis", flag)] {
            let case = format!("{how} {url}");
            assert_status(&o, 0, &case.to_string());
            assert_no_secret(&o, &case);
        }
        assert_eq!(server.query::<i64>(&["EXISTS", &fence_key(&k)]), 1);
    }

    // A quorum list of URLs whose passwords have commas.
    let servers: Vec<_> = (0..3)
        .map(|_| RedisServer::start_with_password(&password(',')))
        .collect();
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("redis://:{}@127.0.0.1:{}", password(','), s.port))
        .collect();
    let k = key("auth-quorum");
    let o = Rr::urls(&urls)
        .args(["--key", &k, "--", "true"])
        .status(0)
        .run();
    assert_no_secret(&o, "quorum");
    for s in &servers {
        assert_eq!(s.query::<i64>(&["EXISTS", &fence_key(&k)]), 1);
    }
}

/// Every shape a password can come in, well-formed or not, for a server
/// at `port`: raw and percent-encoded, with and without a user name, in a
/// query, in URLs that do not parse, with no scheme or a wrong one.
fn urls_with_passwords(port: u16) -> Vec<String> {
    let mut urls = Vec::new();
    for special in SPECIALS {
        let (pw, enc) = (password(special), encoded(special));
        urls.extend([
            format!("redis://:{pw}@127.0.0.1:{port}"),
            format!("redis://alice:{pw}@127.0.0.1:{port}/0"),
            format!("redis://:{enc}@127.0.0.1:{port}"),
            format!("rediss://alice:{pw}@127.0.0.1:{port}"),
            format!("redis://127.0.0.1:{port}/0?password={pw}"),
            format!("unix:///nonexistent/redis.sock?db=0&pass={pw}"),
            format!("redis://:{pw}@[bad"),
            format!("redis://:{pw}@127.0.0.1:{port}x"),
            format!("http://:{pw}@127.0.0.1:{port}"),
            format!(":{pw}@127.0.0.1:{port}"),
        ]);
        // A userinfo without ':' is all hidden (with a ':' in it, the
        // first half would be a user name, which is shown).
        if special != ':' {
            urls.push(format!("redis://{pw}@127.0.0.1:{port}"));
        }
    }
    urls
}

/// Log levels: the default, -v, -vvv, REDLOCK_LOG=trace, JSON lines.
const LEVELS: [(&[&str], Option<&str>); 5] = [
    (&[], None),
    (&["-v"], None),
    (&["-vvv"], None),
    (&[], Some("trace")),
    (&["-vvv", "--log-format", "json"], None),
];

/// Run `sub` (a subcommand, or none for run mode) with `args` (which
/// name no URL), with `url` given through REDLOCK_REDIS and through
/// --redis, at each of `levels`: the run must fail as bad usage (2) or
/// unreachable (69) and print no part of the password.
fn assert_never_printed(
    url: &str,
    sub: Option<&str>,
    args: &[&str],
    levels: &[(&[&str], Option<&str>)],
) {
    for (flags, log) in levels {
        for through_env in [true, false] {
            let mut cmd = if through_env {
                rr_urls(&[url.to_string()])
            } else {
                rr_urls(&[])
            };
            if let Some(level) = log {
                cmd.env("REDLOCK_LOG", level);
            }
            cmd.args(sub);
            if !through_env {
                cmd.args(["--redis", url]);
            }
            let o = output(cmd.args(*flags).args(args));
            let case = format!(
                "{} {url:?} {sub:?} {args:?} {flags:?} REDLOCK_LOG={log:?}",
                if through_env {
                    "REDLOCK_REDIS"
                } else {
                    "--redis"
                }
            );
            assert!(
                matches!(o.status.code(), Some(2 | 69)),
                "{case}: exit {:?}: {}",
                o.status.code(),
                stderr(&o)
            );
            assert!(!stderr(&o).is_empty(), "{case}: nothing on stderr");
            assert_no_secret(&o, &case);
        }
    }
}

/// Nothing listens on the port: connection refused, or bad usage.
#[test]
fn passwords_are_never_printed_for_an_unreachable_server() {
    let port = free_port();
    for url in urls_with_passwords(port) {
        assert_never_printed(&url, None, &["--key", "k", "--", "true"], &LEVELS);
        assert_never_printed(&url, Some("status"), &["--key", "k"], &LEVELS[..4]);
        assert_never_printed(
            &url,
            Some("release"),
            &["--key", "k", "--force"],
            &LEVELS[2..4],
        );
    }
    // Waiting out a --timeout: every retry is logged at -vvv.
    for special in SPECIALS {
        let url = format!("redis://alice:{}@127.0.0.1:{port}", password(special));
        assert_never_printed(
            &url,
            None,
            &["--timeout", "300ms", "--key", "k", "--", "true"],
            &LEVELS[2..3],
        );
    }
}

/// Usage errors clap itself prints, which quote the offending argument.
#[test]
fn passwords_are_never_printed_in_clap_errors() {
    let port = free_port();
    for url in urls_with_passwords(port) {
        let rdis = format!("--rdis={url}");
        let cases: [&[&str]; 4] = [
            &["--key", "k", &url, "--", "true"],
            &[&rdis, "--key", "k", "--", "true"],
            &["status", "--key", "k", &url],
            &["--key", "k", "--timeout", &url, "--", "true"],
        ];
        for args in cases {
            let o = Rr::urls(&[]).args(args).run();
            let case = format!("{args:?}");
            assert_status(&o, 2, &case.to_string());
            assert!(o.stdout.is_empty(), "{case}: {}", stdout(&o));
            assert!(stderr(&o).starts_with("error:"), "{case}: {}", stderr(&o));
            assert_no_secret(&o, &case);
        }
    }
}

/// A real server that requires a password, given a wrong one (with the
/// default user and an ACL user name): refused (69), nothing printed.
#[test]
fn wrong_passwords_are_never_printed() {
    for special in SPECIALS {
        let server = RedisServer::start_with_password(&format!("R1ght{special}Pass9"));
        let port = server.port;
        for user in ["", "alice", "default"] {
            let url = format!("redis://{user}:{}@127.0.0.1:{port}", in_userinfo(special));
            assert_never_printed(&url, None, &["--key", "k", "--", "true"], &LEVELS);
            assert_never_printed(
                &url,
                None,
                &["--timeout", "300ms", "--key", "k", "--", "true"],
                &LEVELS[2..3],
            );
            assert_never_printed(&url, Some("status"), &["--key", "k"], &LEVELS[2..4]);
        }
        assert!(!server.exists("k"));
    }
}

// --- --redis-file / REDLOCK_REDIS_FILE (spec, "Secrets from a file") ---

/// The password of the servers the file tests start: never in argv, an
/// environment, or the output (it holds both [`PARTS`], which
/// `assert_no_secret` looks for).
const FILE_PW: &str = "Pa55w0rdXf1le";

/// A private file (mode 0600) named `name` in `dir`, holding `text`.
fn url_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The URL of a server started with FILE_PW, password included.
fn file_url(server: &RedisServer) -> String {
    format!("redis://:{FILE_PW}@127.0.0.1:{}", server.port)
}

/// A private `redis.urls` in `dir` naming that server.
fn server_file(dir: &Path, server: &RedisServer) -> PathBuf {
    url_file(dir, "redis.urls", &format!("{}\n", file_url(server)))
}

/// redlock-run with neither REDLOCK_REDIS nor REDLOCK_REDIS_FILE set.
fn rr_bare() -> Command {
    let mut c = rr_urls(&[]);
    c.env_remove("REDLOCK_REDIS");
    c
}

fn proc_file(pid: i32, name: &str) -> String {
    let bytes = std::fs::read(format!("/proc/{pid}/{name}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/{name}: {e}"));
    String::from_utf8_lossy(&bytes).replace('\0', " ")
}

/// The file form: the password is in no process's argv or environment
/// (redlock-run, its guardian, the command), the command gets the file's
/// absolute path in REDLOCK_REDIS_FILE and no REDLOCK_REDIS, and the lock
/// is taken on the password-protected server named in the file.
#[test]
fn a_redis_file_keeps_the_password_out_of_ps_and_the_command() {
    let server = RedisServer::start_with_password(FILE_PW);
    let dir = tempfile::tempdir().unwrap();
    let file = url_file(
        dir.path(),
        "redis.urls",
        &format!(
            "# the lock server\n\nredis://:{FILE_PW}@127.0.0.1:{}\n",
            server.port
        ),
    );
    let k = key("file-ps");
    let mut child = rr_bare()
        .current_dir(dir.path())
        // A relative path: the command is given it made absolute.
        .args(["--redis-file", "redis.urls", "--key", &k, "--"])
        .args([
            "sh",
            "-c",
            "env > env.txt; echo $$ > ready; read -r _ || true",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sh = read_pid(&dir.path().join("ready"));
    let rr_pid = child.id() as i32;
    let guardian = guardian_of(rr_pid).expect("the guardian of the run");
    assert_eq!(server.query::<i64>(&["EXISTS", &k]), 1, "the lock is held");
    for (who, pid) in [
        ("redlock-run", rr_pid),
        ("guardian", guardian),
        ("command", sh),
    ] {
        for name in ["cmdline", "environ"] {
            let text = proc_file(pid, name);
            assert!(
                !text.contains(FILE_PW),
                "{who}'s {name} holds the password: {text}"
            );
        }
    }
    assert!(proc_file(rr_pid, "cmdline").contains("--redis-file redis.urls"));
    let env = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert!(!env.contains(FILE_PW), "the command's env: {env}");
    assert!(
        !env.lines().any(|l| l.starts_with("REDLOCK_REDIS=")),
        "{env}"
    );
    let absolute = format!("REDLOCK_REDIS_FILE={}", file.display());
    assert!(env.lines().any(|l| l == absolute), "no {absolute} in {env}");
    drop(child.stdin.take());
    let o = wait_output(child, DONE);
    assert_exit(&o, 0);
    assert!(!server.exists(&k), "released");
    assert_eq!(server.query::<i64>(&["EXISTS", &fence_key(&k)]), 1);
}

/// A redlock-run inside the command finds its server through the
/// inherited REDLOCK_REDIS_FILE. The outer run also had REDLOCK_REDIS set
/// (overridden by --redis-file): had the command inherited it, the inner
/// run would see both variables and refuse (exit 2), and its environment
/// would hold the password.
#[test]
fn a_nested_run_finds_its_server_through_the_file() {
    let server = RedisServer::start_with_password(FILE_PW);
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&server);
    let file = server_file(dir.path(), &server);
    let (outer, inner) = (key("file-outer"), key("file-inner"));
    let o = Rr::urls(std::slice::from_ref(&url))
        .current_dir(dir.path())
        .arg("--redis-file")
        .arg(&file)
        .args(["--key", &outer, "--", "sh", "-c"])
        .arg(r#""$0" --key "$1" -- sh -c 'env > inner-env.txt'"#)
        .arg(bin())
        .arg(&inner)
        .status(0)
        .run();
    assert_no_secret(&o, "nested");
    let env = std::fs::read_to_string(dir.path().join("inner-env.txt")).unwrap();
    assert!(!env.contains(FILE_PW), "the inner command's env: {env}");
    for k in [&outer, &inner] {
        assert_eq!(
            server.query::<i64>(&["EXISTS", &fence_key(k)]),
            1,
            "{k} was locked"
        );
    }
}

/// Each mode, as `args` after the program's name, with a marker command
/// where the mode runs one: run it with `file` and return the output.
fn every_mode(k: &str) -> Vec<Vec<String>> {
    let marker = "touch ran";
    [
        vec!["--key", k, "--shell", marker],
        vec!["schedule", "--key", k, "--every", "1s", "--shell", marker],
        vec!["status", "--key", k],
        vec!["list"],
        vec!["release", "--key", k, "--force"],
        vec!["doctor", "--key", k],
    ]
    .into_iter()
    .map(|a| a.into_iter().map(String::from).collect())
    .collect()
}

/// A file that group or others may access is refused in every mode
/// (exit 2, the first line naming the file and its mode), given as
/// --redis-file or REDLOCK_REDIS_FILE; nothing runs, no password shows.
#[test]
fn a_redis_file_open_to_group_or_others_is_refused() {
    let server = RedisServer::start_with_password(FILE_PW);
    let dir = tempfile::tempdir().unwrap();
    let file = server_file(dir.path(), &server);
    let k = key("file-open");
    for mode in [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o610] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        for args in every_mode(&k) {
            for through_env in [false, true] {
                let mut cmd = rr_bare();
                cmd.current_dir(dir.path()).args(&args);
                if through_env {
                    cmd.env("REDLOCK_REDIS_FILE", &file);
                } else {
                    cmd.arg("--redis-file").arg(&file);
                }
                let o = output(&mut cmd);
                let case = format!("mode {mode:o} {args:?} env={through_env}");
                assert_status(&o, 2, &case.to_string());
                let err = stderr(&o);
                let first = err.lines().next().unwrap_or_default();
                assert!(
                    first.contains(&file.display().to_string())
                        && first.contains(&format!("(mode 0{mode:o})")),
                    "{case}: {err}"
                );
                assert_no_secret(&o, &case);
                assert!(!dir.path().join("ran").exists(), "{case}: the command ran");
            }
        }
    }
    assert!(!server.exists(&k) && !server.exists(&fence_key(&k)));
}

/// With a private file, every mode reaches the server in the file.
#[test]
fn every_mode_reads_a_redis_file() {
    let server = RedisServer::start_with_password(FILE_PW);
    let dir = tempfile::tempdir().unwrap();
    let file = server_file(dir.path(), &server);
    let k = key("file-modes");
    let run = |args: &[String]| {
        output(
            rr_bare()
                .current_dir(dir.path())
                .env("REDLOCK_REDIS_FILE", &file)
                .args(args),
        )
    };
    let modes = every_mode(&k);
    // Run: the command ran under the lock.
    let o = run(&modes[0]);
    assert_status(&o, 0, "run");
    assert!(dir.path().join("ran").exists());
    assert_eq!(
        server.query::<i64>(&["LLEN", &history_key(&k)]),
        1,
        "runs recorded"
    );
    // Schedule: one tick, whose command then stops the schedule (SIGTERM
    // to redlock-run, which waits for it and exits 0).
    let o = run(&[
        "schedule".into(),
        "--key".into(),
        k.clone(),
        "--every".into(),
        "1s".into(),
        "--shell".into(),
        "env > sched-env.txt; kill -TERM $PPID".into(),
    ]);
    assert_status(&o, 0, "schedule");
    let env = std::fs::read_to_string(dir.path().join("sched-env.txt")).unwrap();
    assert!(!env.contains(FILE_PW), "schedule's command env: {env}");
    assert_eq!(
        server.query::<i64>(&["LLEN", &history_key(&k)]),
        2,
        "runs recorded"
    );
    // Status: free (1); list: nothing held (0); doctor: it reached the
    // server (0 or 1, never 2 or 69); release: nothing to remove (0).
    for (args, codes) in [
        (&modes[2], &[1][..]),
        (&modes[3], &[0]),
        (&modes[4], &[0]),
        (&modes[5], &[0, 1]),
    ] {
        let o = run(args);
        let code = o.status.code().unwrap_or(-1);
        assert!(
            codes.contains(&code),
            "{args:?}: exit {code}: {}",
            stderr(&o)
        );
        assert_no_secret(&o, &format!("{args:?}"));
    }
}

/// `--redis` and `--redis-file` together are refused, as are both
/// variables; the command line overrides the environment either way
/// (the overridden file is not even read: here it is world-readable).
#[test]
fn redis_and_redis_file_conflicts() {
    let server = RedisServer::start_with_password(FILE_PW);
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&server);
    let file = url_file(dir.path(), "good", &format!("{url}\n"));
    let open = url_file(dir.path(), "open", &format!("{url}\n"));
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let k = key("file-conflict");
    let both = output(
        rr_bare()
            .args(["--redis", &url, "--redis-file"])
            .arg(&file)
            .args(["--key", &k, "--", "true"]),
    );
    assert_exit(&both, 2);
    assert!(
        stderr(&both).starts_with("error: --redis and --redis-file both"),
        "{}",
        stderr(&both)
    );
    assert_no_secret(&both, "--redis and --redis-file");
    let envs = Rr::urls(std::slice::from_ref(&url))
        .env("REDLOCK_REDIS_FILE", &file)
        .args(["status", "--key", &k])
        .status(2)
        .run();
    assert!(
        stderr(&envs).starts_with("error: REDLOCK_REDIS and REDLOCK_REDIS_FILE are both set"),
        "{}",
        stderr(&envs)
    );
    assert!(
        stderr(&envs).contains("redlock-run status"),
        "the mode's usage"
    );
    // --redis beats REDLOCK_REDIS_FILE; --redis-file beats REDLOCK_REDIS.
    let flag = output(
        rr_bare()
            .env("REDLOCK_REDIS_FILE", &open)
            .args(["--redis", &url, "--key", &k, "--", "true"]),
    );
    assert_exit(&flag, 0);
    Rr::urls(&["redis://127.0.0.1:1".into()])
        .arg("--redis-file")
        .arg(&file)
        .args(["--key", &k, "--", "true"])
        .status(0)
        .run();
    assert_eq!(
        server.query::<i64>(&["LLEN", &history_key(&k)]),
        2,
        "runs recorded"
    );
}

/// Bad lines are named by their number, the URL shown without its
/// password; a file with no URL, a missing file and a directory are
/// refused (exit 2).
#[test]
fn bad_redis_files_are_refused_without_showing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let bad = url_file(
        dir.path(),
        "bad",
        &format!("# ok\nredis://127.0.0.1:1\nredis://:{FILE_PW}@[bad\n"),
    );
    let empty = url_file(dir.path(), "empty", "# nothing yet\n\n");
    // The password alone where a URL should be: never echoed.
    let bare = url_file(
        dir.path(),
        "bare",
        &format!("redis://127.0.0.1:1\n  {FILE_PW}\n"),
    );
    // A URL of another scheme: refused for its scheme, and not shown.
    let other = url_file(
        dir.path(),
        "other",
        &format!("http://u:{FILE_PW}@127.0.0.1:1\n"),
    );
    let cases = [
        (other, "other, line 1: not a Redis URL: its scheme is not"),
        (
            bad.clone(),
            "bad, line 3: invalid Redis URL \"redis://:***@[bad\"",
        ),
        (bare, "bare, line 2: not a Redis URL"),
        (empty, "holds no URL"),
        (dir.path().join("missing"), "cannot read the Redis URL file"),
        (dir.path().to_path_buf(), "is not a regular file"),
    ];
    for (path, want) in cases {
        let o = output(
            rr_bare()
                .arg("--redis-file")
                .arg(&path)
                .args(["--key", "k", "--", "true"]),
        );
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}: {}",
            path.display(),
            stderr(&o)
        );
        let first = stderr(&o).lines().next().unwrap_or_default().to_string();
        assert!(first.contains(want), "{}: {first}", path.display());
        assert_no_secret(&o, &path.display().to_string());
    }
}

/// Owners (needs root, as CI runs: only root can give a file away): a
/// file of another user is refused, also to root; a file of root's is
/// accepted for another user, here as systemd's `LoadCredential=` with
/// `User=` leaves it (mode 0440, the group bits being the mask of an ACL
/// that lets that user read), while an ACL that lets another user read
/// it is refused.
#[test]
fn a_redis_file_of_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root can create a file owned by another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let server = RedisServer::start_with_password(FILE_PW);
    let dir = tempfile::tempdir().unwrap();
    // nobody must reach the files (not list the directory).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let text = format!("{}\n", file_url(&server));
    let theirs = url_file(dir.path(), "theirs", &text);
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let k = key("file-owner");
    let o = output(
        rr_bare()
            .arg("--redis-file")
            .arg(&theirs)
            .args(["--key", &k, "--", "true"]),
    );
    assert_exit(&o, 2);
    let first = stderr(&o).lines().next().unwrap_or_default().to_string();
    assert!(
        first.contains(&theirs.display().to_string())
            && first.contains("is owned by")
            && first.contains("65534"),
        "{first}"
    );
    assert_no_secret(&o, "another owner");

    // Root's file, mode 0440, readable by nobody through an ACL.
    let credential = url_file(dir.path(), "credential", &text);
    std::fs::set_permissions(&credential, std::fs::Permissions::from_mode(0o400)).unwrap();
    let as_nobody = |path: &Path| {
        output(
            rr_bare()
                .uid(NOBODY)
                .gid(NOBODY)
                .current_dir("/")
                .arg("--redis-file")
                .arg(path)
                .args(["--key", &k, "--", "true"]),
        )
    };
    // Without the ACL, nobody cannot read root's 0400 file at all.
    let o = as_nobody(&credential);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    let acl = |user: u32| {
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 4u16, u32::MAX),
            (2, 4, user),
            (4, 0, u32::MAX),
            (0x10, 4, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            v.extend(tag.to_le_bytes());
            v.extend(perm.to_le_bytes());
            v.extend(id.to_le_bytes());
        }
        v
    };
    let set = rustix::fs::setxattr(
        &credential,
        "system.posix_acl_access",
        &acl(NOBODY),
        rustix::fs::XattrFlags::empty(),
    );
    if let Err(e) = set {
        eprintln!("skipped the ACL cases: this file system has no POSIX ACLs ({e})");
        return;
    }
    let mode = std::fs::metadata(&credential).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o440, "the group bits show the ACL's mask");
    let o = as_nobody(&credential);
    assert_exit(&o, 0);
    assert_eq!(
        server.query::<i64>(&["LLEN", &history_key(&k)]),
        1,
        "runs recorded"
    );
    // The same ACL, for a user other than the one running: refused.
    rustix::fs::setxattr(
        &credential,
        "system.posix_acl_access",
        &acl(NOBODY - 1),
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let o = output(
        rr_bare()
            .arg("--redis-file")
            .arg(&credential)
            .args(["--key", &k, "--", "true"]),
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("(mode 0440 and its ACL)"),
        "{}",
        stderr(&o)
    );
}

/// A value with no scheme may be a password given where the URL belongs
/// (`--redis "$REDIS_PASSWORD"`): it is refused (exit 2) without being
/// shown, in part or whole, wherever it came from (--redis, REDLOCK_REDIS,
/// a --redis-file line), in every mode, and the error says what to write.
#[test]
fn a_redis_value_without_a_scheme_is_refused_without_being_shown() {
    let dir = tempfile::tempdir().unwrap();
    // Each holds both PARTS; `:`/`@` make the redaction of URLs show a tail.
    let values = [
        format!("{}{}", PARTS[0], PARTS[1]),
        format!("{}@{}", PARTS[0], PARTS[1]),
        format!("{}:{}", PARTS[0], PARTS[1]),
        format!("{}@h:{}", PARTS[0], PARTS[1]),
    ];
    for value in &values {
        let file = url_file(dir.path(), "bare.urls", &format!("{value}\n"));
        // (before the redis option, after it): run mode, then status.
        let modes: [(&[&str], &[&str]); 2] = [
            (&[], &["--key", "k", "--", "true"]),
            (&["status"], &["--key", "k"]),
        ];
        for (mode, rest) in modes {
            let mut by_flag = rr_bare();
            by_flag.args(mode).args(["--redis", value]).args(rest);
            let mut by_env = rr_bare();
            by_env.args(mode).args(rest).env("REDLOCK_REDIS", value);
            let mut by_file = rr_bare();
            by_file.args(mode).arg("--redis-file").arg(&file).args(rest);
            for (how, c) in [("--redis", by_flag), ("env", by_env), ("file", by_file)] {
                let case = format!("{how} {value:?} {mode:?}");
                let o = Rr::command(c).note(&case).status(2).run();
                let first = stderr(&o).lines().next().unwrap_or_default().to_string();
                assert!(
                    first.contains("no scheme") && first.contains("redis://HOST:PORT"),
                    "{case}: the first line says what to write: {first}"
                );
                assert_no_secret(&o, &case);
            }
        }
    }
}
