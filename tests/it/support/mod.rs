//! Test support: real `redis-server` processes on free loopback ports
//! (never 6379), stopped by PID; the binary under test; small helpers.
//!
//! Which server a test runs on: [`ServerKind::current`], from
//! `REDLOCK_TEST_SERVER` (`redis-7.0`, the default: Debian's
//! `redis-server` on PATH; `redis-6.2`; `valkey-9.1`), or for the scope
//! of [`with_server`] on this thread (the matrix set). Every server a test
//! starts, Sentinels and Cluster nodes included, is of that kind.
//!
//! How a test runs redlock-run: [`Rr`] (`Rr::on(&server).args(..)
//! .status(75).stderr_has(..).key_absent(&k).run()`), or [`Sh`] for the
//! `-- sh -c SCRIPT` shape with ready markers. Helpers two files need
//! live here, not copied.

mod probe;
pub mod proxy;
mod rr;
mod servers;
mod sh;
pub mod topology;

pub use servers::{ServerKind, with_server};

pub use probe::{
    info_i64, now_ns, percentile, proc_state, redis_now_ms, server_without_channels, stat_state,
    status_json, status_json_at, status_text,
};
pub use rr::{Rr, assert_exit, assert_status};
pub use sh::{DONE, READY, Sh};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The redlock-run binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redlock-run"))
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        if port != 6379 {
            return port;
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique key for one test.
pub fn key(name: &str) -> String {
    format!(
        "t-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `redis-server` we started; killed (by PID) on drop. Its log is printed
/// when the test fails (panics) so a failure shows the server's side too.
pub struct RedisServer {
    pub port: u16,
    /// Which server binary runs.
    pub kind: ServerKind,
    child: Option<Child>,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// `requirepass`, when the server was started with one.
    password: Option<String>,
    /// A config file, given before the other arguments.
    config: Option<PathBuf>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start with extra `redis-server` arguments (e.g. `["--appendonly", "yes"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_on(free_port(), extra)
    }

    /// [`RedisServer::start_with`] on a given (free) port.
    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = RedisServer {
            port,
            kind: ServerKind::current(),
            child: None,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            password: None,
            config: None,
        };
        s.spawn();
        s
    }

    /// Start with `requirepass` set: every client must authenticate.
    /// The test's own connections (`conn`, `query`) do.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with_password_and(password, &[])
    }

    /// [`RedisServer::start_with_password`] with extra arguments.
    pub fn start_with_password_and(password: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = RedisServer {
            port: free_port(),
            kind: ServerKind::current(),
            child: None,
            dir,
            extra: ["--requirepass", password]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect(),
            password: Some(password.into()),
            config: None,
        };
        s.spawn();
        s
    }

    /// [`RedisServer::start_with`] on a server of the given kind, whatever
    /// the test's current one.
    pub fn start_kind(kind: ServerKind, extra: &[&str]) -> Self {
        with_server(kind, || Self::start_with(extra))
    }

    /// Start with a config file holding `text` (directives the command
    /// line cannot give, e.g. `rename-command CONFIG ""` as managed
    /// services set it).
    pub fn start_with_config(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("redis.conf");
        std::fs::write(&config, text).unwrap();
        let mut s = RedisServer {
            port: free_port(),
            kind: ServerKind::current(),
            child: None,
            dir,
            extra: Vec::new(),
            password: None,
            config: Some(config),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(self.kind.binary());
        cmd.args(&self.config);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} ({})", self.kind, self.kind.install_hint()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = self.try_conn() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} on {} did not come up:\n{}",
                self.kind,
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("server running").id() as i32)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        use redis::IntoConnectionInfo;
        let mut info = self.url().into_connection_info()?;
        if let Some(p) = &self.password {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info)?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// A plain synchronous connection, for asserting on Redis state.
    pub fn conn(&self) -> redis::Connection {
        let c = self.try_conn().expect("connect to test redis");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c
    }

    pub fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET").arg(key).query(&mut self.conn()).unwrap()
    }

    pub fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL").arg(key).query(&mut self.conn()).unwrap()
    }

    pub fn exists(&self, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query::<i64>(&mut self.conn())
            .unwrap()
            == 1
    }

    /// SIGSTOP the server (it stays bound, but answers nothing).
    pub fn pause(&self) {
        kill(self.pid(), Signal::SIGSTOP).unwrap();
    }

    pub fn resume(&self) {
        kill(self.pid(), Signal::SIGCONT).unwrap();
    }

    /// Kill -9 and reap the server.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port (with the same data dir).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {} :{} log ----\n{}", self.kind, self.port, self.log());
        }
        self.kill();
    }
}

/// A `redlock-run` command pointed at `server`, with logs at debug level.
pub fn rr(server: &RedisServer) -> Command {
    rr_urls(&[server.url()])
}

pub fn rr_urls(urls: &[String]) -> Command {
    let mut c = Command::new(bin());
    c.env_remove("REDLOCK_KEY")
        .env_remove("REDLOCK_TIMEOUT")
        .env_remove("REDLOCK_TTL")
        .env_remove("REDLOCK_LOG")
        .env_remove("REDLOCK_REDIS_FILE")
        .env("REDLOCK_REDIS", urls.join(","));
    c
}

/// Run to completion with a generous safety timeout (the test fails, and
/// the process is killed, if it hangs).
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redlock-run");
    wait_output(child, Duration::from_secs(60))
}

pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "process did not finish within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Wait for `path` to exist and hold a full line (a ready marker written by
/// a child), up to `limit`.
pub fn wait_for_file(path: &Path, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether a process with this PID exists (zombies count as gone).
pub fn alive(pid: i32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z')
}

impl RedisServer {
    /// Any command against the server, e.g. `server.query(&["PUBSUB", "NUMSUB", ch])`.
    pub fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut self.conn())
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Subscribers to a channel right now (`PUBSUB NUMSUB`).
    pub fn subscribers(&self, channel: &str) -> i64 {
        let (_, n): (String, i64) = self.query(&["PUBSUB", "NUMSUB", channel]);
        n
    }

    /// Subscribers to a sharded channel (SSUBSCRIBE, Redis 7).
    pub fn shard_subscribers(&self, channel: &str) -> i64 {
        let (_, n): (String, i64) = self.query(&["PUBSUB", "SHARDNUMSUB", channel]);
        n
    }
}

/// The channel a releasing redlock-run publishes on (waiters subscribe to it).
pub fn released_channel(key: &str) -> String {
    format!("{{{key}}}:redlock-run:released")
}

/// The run history's key.
pub fn history_key(key: &str) -> String {
    format!("{{{key}}}:redlock-run:history")
}

/// The waiters' queue of a key (a sorted set).
pub fn waiters_key(key: &str) -> String {
    format!("{{{key}}}:redlock-run:waiters")
}

/// How many waiters are queued for `key` (`ZCARD` of its queue).
pub fn queued(server: &RedisServer, key: &str) -> i64 {
    server.query(&["ZCARD", &waiters_key(key)])
}

/// The fencing counter's key.
pub fn fence_key(key: &str) -> String {
    format!("{{{key}}}:redlock-run:fence")
}

/// Poll `cond` (a cheap look at some state, not a sleep for an event) until
/// it holds, up to `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Run to completion, feeding `input` on stdin and collecting stdout and
/// stderr concurrently (so large outputs cannot fill a pipe and hang);
/// killed, and the test failed, after `limit`.
pub fn output_with_input(cmd: &mut Command, input: Vec<u8>, limit: Duration) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redlock-run");
    let pid = Pid::from_raw(child.id() as i32);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // A broken pipe here shows up as a short stdout in the test.
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            writer.join().unwrap();
            out.unwrap()
        }
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("process did not finish within {limit:?}");
        }
    }
}

static HOLDERS: AtomicU32 = AtomicU32::new(0);

/// A `redlock-run` holding a key while its command blocks reading stdin.
/// The command writes `KEY TOKEN FENCING` to a ready file once it runs, and
/// on stdin EOF appends `end <n>` to `<dir>/order` and exits 0.
/// Killed by PID (its command dies with it) if dropped unfinished.
pub struct Holder {
    child: Option<Child>,
    stdin: Option<std::process::ChildStdin>,
    pub ready: PathBuf,
    pub order: PathBuf,
}

/// What a holder's command saw in its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderEnv {
    pub key: String,
    pub token: String,
    pub fencing: u64,
}

impl Holder {
    /// Start one and wait (10 s at most) until its command runs.
    pub fn start(server: &RedisServer, key: &str, dir: &Path, extra: &[&str]) -> (Self, HolderEnv) {
        let h = Self::spawn(server, key, dir, extra);
        let env = h.wait_ready(Duration::from_secs(10));
        (h, env)
    }

    /// Start one without waiting for it to get the lock.
    pub fn spawn(server: &RedisServer, key: &str, dir: &Path, extra: &[&str]) -> Self {
        Self::spawn_at(&server.url(), key, dir, extra)
    }

    /// [`Holder::spawn`] against any `--redis` URL (Sentinel, Cluster).
    pub fn spawn_at(url: &str, key: &str, dir: &Path, extra: &[&str]) -> Self {
        let n = HOLDERS.fetch_add(1, Ordering::Relaxed);
        let ready = dir.join(format!("holder-{n}.ready"));
        let order = dir.join("order");
        let script = r#"printf '%s %s %s\n' "$REDLOCK_KEY" "$REDLOCK_TOKEN" "$REDLOCK_FENCING_TOKEN" > "$1"
read -r _ignored
echo "end $3" >> "$2""#;
        let mut child = rr_urls(&[url.to_string()])
            .args(["--key", key])
            .args(extra)
            .arg("--")
            .args(["sh", "-c", script, "sh"])
            .arg(&ready)
            .arg(&order)
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redlock-run");
        let stdin = child.stdin.take();
        Holder {
            child: Some(child),
            stdin,
            ready,
            order,
        }
    }

    /// The redlock-run process's PID.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn wait_ready(&self, limit: Duration) -> HolderEnv {
        let line = wait_for_file(&self.ready, limit);
        let mut f = line.split_whitespace();
        let env = HolderEnv {
            key: f.next().unwrap_or_default().to_string(),
            token: f.next().unwrap_or_default().to_string(),
            fencing: f
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no fencing token in {line:?}")),
        };
        assert!(!env.token.is_empty(), "no token in {line:?}");
        env
    }

    /// Whether the command has started (its ready file is complete).
    pub fn is_ready(&self) -> bool {
        std::fs::read_to_string(&self.ready).is_ok_and(|s| s.ends_with('\n'))
    }

    /// Let the command finish (close its stdin) and wait for redlock-run.
    pub fn finish(mut self) -> Output {
        self.stdin.take();
        self.wait()
    }

    /// [`Holder::finish`], which must exit 0.
    #[track_caller]
    pub fn finish_ok(self) -> Output {
        let o = self.finish();
        assert_status(&o, 0, "a Holder (finish_ok)");
        o
    }

    /// Wait for redlock-run to exit on its own (stdin stays open).
    pub fn wait(mut self) -> Output {
        let child = self.child.take().expect("running");
        wait_output(child, Duration::from_secs(30))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Start `cmd` in the background with stdin closed and stdout/stderr
/// piped (collect them with `wait_output`).
pub fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redlock-run")
}

/// Send `sig` to the process `pid` (one we started).
pub fn send_signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
}

/// The PID a child wrote to a ready file (`echo $$ > file`).
pub fn read_pid(path: &Path) -> i32 {
    let s = wait_for_file(path, Duration::from_secs(10));
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no pid in {}: {s:?}", path.display()))
}

/// The token a child wrote to a ready file (`echo "$REDLOCK_TOKEN" >
/// file`), once it is there (up to [`READY`]).
pub fn read_token(path: &Path) -> String {
    wait_for_file(path, READY).trim().to_string()
}

/// Poll (every millisecond) until `pid` is gone or a zombie; returns when
/// that was first seen. Fails the test after `limit`.
pub fn wait_gone(pid: i32, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        if !alive(pid) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} still alive after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Compile a C helper of the tests (a program, or with `-shared -fPIC` a
/// library) into CARGO_TARGET_TMPDIR, once per version of its source, and
/// return its path. The C compiler is the one Rust already needs as its
/// linker.
pub fn compile_c(stem: &str, source: &str, flags: &[&str]) -> PathBuf {
    // FNV-1a of the source and flags: a new build only when they change.
    let hash = source
        .bytes()
        .chain(flags.concat().bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = dir.join(format!("{stem}-{hash:016x}"));
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let pid = std::process::id();
    let src = dir.join(format!("{stem}-{pid}.c"));
    let tmp = dir.join(format!("{stem}-{pid}.tmp"));
    std::fs::write(&src, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let res = output_within(
        Command::new(&cc)
            .args(["-O2"])
            .args(flags)
            .arg("-o")
            .arg(&tmp)
            .arg(&src),
        Duration::from_secs(120),
    );
    assert!(
        res.status.success(),
        "building {stem} failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    // Atomic: a concurrent test process sees the old name or the whole file.
    std::fs::rename(&tmp, &out).unwrap();
    let _ = std::fs::remove_file(&src);
    out
}

/// The guardian of the redlock-run process `rr_pid`: its child that runs
/// the same binary (the command is another program) in a group of its own.
pub fn guardian_of(rr_pid: i32) -> Option<i32> {
    let exe = std::fs::read_link(format!("/proc/{rr_pid}/exe")).ok()?;
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut f = stat.rsplit(')').next()?.split_whitespace().skip(1);
        let (ppid, pgrp): (i32, i32) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        (ppid == rr_pid
            && pgrp == pid
            && std::fs::read_link(format!("/proc/{pid}/exe")).ok()? == exe)
            .then_some(pid)
    })
}

/// `schedule`'s per-tick claim.
pub fn tick_key(key: &str) -> String {
    format!("{{{key}}}:redlock-run:tick")
}

/// The libfaketime preload library (the `faketime` package; scripts/test
/// installs it).
pub fn libfaketime() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/lib64/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("libfaketime not found: apt-get install -y faketime (scripts/test does)")
}

/// Give `cmd` a new pseudo-terminal (`cols` columns wide, or of unknown
/// size) as its stdin, stdout, stderr and controlling terminal, with the
/// process as its session leader; returns the master side. The slave side
/// stays open in `cmd` until it is dropped.
pub fn attach_pty(cmd: &mut Command, cols: Option<u16>) -> std::fs::File {
    use std::os::unix::process::CommandExt;
    let size = cols.map(|c| nix::pty::Winsize {
        ws_row: 24,
        ws_col: c,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let pty = nix::pty::openpty(size.as_ref(), None).expect("openpty");
    let slave = pty.slave;
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and the TIOCSCTTY ioctl are async-signal-safe system
    // calls on the child's own descriptors.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    std::fs::File::from(pty.master)
}

/// A lower bound, on the test's clock, of when `key`'s lease ends in
/// Redis: a PTTL read, counted from just before it was sent (Redis ran it
/// later, and PTTL rounds down). The key must exist.
pub fn expiry_lower_bound(c: &mut redis::Connection, key: &str) -> Instant {
    let sent = Instant::now();
    let pttl: i64 = redis::cmd("PTTL").arg(key).query(c).unwrap();
    assert!(pttl > 0, "{key} has no lease (PTTL {pttl})");
    sent + Duration::from_millis(pttl as u64)
}

/// Run to completion (stdin closed, stdout and stderr collected), killed by
/// PID and the test failed after `limit`: a child that hangs never hangs
/// the suite.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    wait_output(child, limit)
}

/// Run to completion with the stdio `cmd` already has, killed by PID and
/// the test failed after `limit`.
pub fn status_within(cmd: &mut Command, limit: Duration) -> std::process::ExitStatus {
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{:?} did not finish within {limit:?}", cmd.get_program());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
