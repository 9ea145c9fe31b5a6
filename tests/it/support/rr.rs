//! The normal way to write an integration test, after just's `Test`: say
//! what the run is, what it must give, then run it.
//!
//! ```ignore
//! let o = Rr::on(&server)
//!     .args(["--key", &k, "--", "sh", "-c", "echo hi; exit 7"])
//!     .status(7)
//!     .stdout("hi\n")
//!     .stderr_lacks("error")
//!     .key_absent(&k)
//!     .run();
//! // `o` is the `Output`, for whatever else the test checks.
//! ```
//!
//! Every expectation is checked after the run, and a failure shows them
//! all at once with the command line, its exit status, stdout and stderr.
//! `spawn` starts it in the background instead; `Running::wait` checks.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use super::{RedisServer, output_with_input, rr_urls, spawn_piped, wait_output};

/// How long a run may take before the test fails (and it is killed).
const LIMIT: Duration = Duration::from_secs(60);

/// A `redlock-run` invocation and what it must give.
pub struct Rr<'a> {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    limit: Duration,
    servers: Vec<&'a RedisServer>,
    expect: Vec<Expect>,
    note: String,
}

enum Expect {
    Status(i32),
    Stdout(String),
    StdoutHas(String),
    StdoutLacks(String),
    Stderr(String),
    StderrHas(String),
    StderrLacks(String),
    KeyAbsent(String),
}

impl<'a> Rr<'a> {
    /// Against one server (REDLOCK_REDIS); `key_absent` looks there.
    pub fn on(server: &'a RedisServer) -> Self {
        Self::on_all(&[server])
    }

    /// Against several masters (a quorum); `key_absent` looks on each.
    pub fn on_all(servers: &[&'a RedisServer]) -> Self {
        let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
        let mut t = Self::command(rr_urls(&urls));
        t.servers = servers.to_vec();
        t
    }

    /// Against these URLs (servers the test did not start, or none
    /// listening); no server to look at for `key_absent`.
    pub fn urls(urls: &[String]) -> Self {
        Self::command(rr_urls(urls))
    }

    /// Any prepared command (e.g. `Sh::command`, or another program).
    pub fn command(cmd: Command) -> Self {
        Rr {
            cmd,
            stdin: None,
            limit: LIMIT,
            servers: Vec::new(),
            expect: Vec::new(),
            note: String::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(name, value);
        self
    }

    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(name);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Feed these bytes on stdin (closed otherwise).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Fail (and kill it) if it has not ended within `limit` (60 s).
    pub fn within(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// What the run shows (e.g. "2 of 3 masters are a quorum"), said
    /// first when it fails.
    pub fn note(mut self, what: impl Into<String>) -> Self {
        self.note = what.into();
        self
    }

    /// It exits with this code (not by a signal).
    pub fn status(mut self, code: impl Into<i32>) -> Self {
        self.expect.push(Expect::Status(code.into()));
        self
    }

    /// Its stdout is exactly this.
    pub fn stdout(mut self, text: impl Into<String>) -> Self {
        self.expect.push(Expect::Stdout(text.into()));
        self
    }

    pub fn stdout_has(mut self, text: impl Into<String>) -> Self {
        self.expect.push(Expect::StdoutHas(text.into()));
        self
    }

    pub fn stdout_lacks(mut self, text: impl Into<String>) -> Self {
        self.expect.push(Expect::StdoutLacks(text.into()));
        self
    }

    /// Its stderr is exactly this (`""`: a quiet run).
    pub fn stderr(mut self, text: impl Into<String>) -> Self {
        self.expect.push(Expect::Stderr(text.into()));
        self
    }

    pub fn stderr_has(mut self, text: impl Into<String>) -> Self {
        self.expect.push(Expect::StderrHas(text.into()));
        self
    }

    pub fn stderr_lacks(mut self, text: impl Into<String>) -> Self {
        self.expect.push(Expect::StderrLacks(text.into()));
        self
    }

    /// No lock left behind: `key` does not exist on any server afterwards.
    pub fn key_absent(mut self, key: impl Into<String>) -> Self {
        assert!(
            !self.servers.is_empty(),
            "key_absent needs a server to look at: Rr::on or Rr::on_all"
        );
        self.expect.push(Expect::KeyAbsent(key.into()));
        self
    }

    /// The command line, as a failure shows it.
    pub fn shown(&self) -> String {
        show(&self.cmd)
    }

    /// Run to completion and check every expectation; the output, for
    /// further checks.
    #[track_caller]
    pub fn run(mut self) -> Output {
        let o = match self.stdin.take() {
            Some(input) => output_with_input(&mut self.cmd, input, self.limit),
            None => wait_output(spawn_piped(&mut self.cmd), self.limit),
        };
        self.check(&o);
        o
    }

    /// Start in the background (stdin closed, stdout and stderr piped);
    /// `Running::wait` checks the expectations.
    pub fn spawn(mut self) -> Running<'a> {
        assert!(self.stdin.is_none(), "spawn takes no stdin: use run");
        let child = spawn_piped(&mut self.cmd);
        Running { child, test: self }
    }

    #[track_caller]
    fn check(&self, o: &Output) {
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        let mut failed = Vec::new();
        for e in &self.expect {
            match e {
                Expect::Status(c) if o.status.code() != Some(*c) => {
                    failed.push(format!("exit {c} expected, got {}", status(o)));
                }
                Expect::Stdout(t) if out != *t => failed.push(format!("stdout should be {t:?}")),
                Expect::StdoutHas(t) if !out.contains(t.as_str()) => {
                    failed.push(format!("stdout should contain {t:?}"));
                }
                Expect::StdoutLacks(t) if out.contains(t.as_str()) => {
                    failed.push(format!("stdout should not contain {t:?}"));
                }
                Expect::Stderr(t) if err != *t => failed.push(format!("stderr should be {t:?}")),
                Expect::StderrHas(t) if !err.contains(t.as_str()) => {
                    failed.push(format!("stderr should contain {t:?}"));
                }
                Expect::StderrLacks(t) if err.contains(t.as_str()) => {
                    failed.push(format!("stderr should not contain {t:?}"));
                }
                Expect::KeyAbsent(k) => {
                    for s in self.servers.iter().filter(|s| s.exists(k)) {
                        failed.push(format!(
                            "{k} left behind on :{} (PTTL {})",
                            s.port,
                            s.pttl(k)
                        ));
                    }
                }
                _ => {}
            }
        }
        if !failed.is_empty() {
            let note = if self.note.is_empty() {
                String::new()
            } else {
                format!("{}\n", self.note)
            };
            panic!(
                "{note}{}\n  {}\nexit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.shown(),
                failed.join("\n  "),
                status(o),
                clip(&out),
                clip(&err)
            );
        }
    }
}

/// A run started with [`Rr::spawn`].
pub struct Running<'a> {
    child: Child,
    test: Rr<'a>,
}

impl Running<'_> {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for it to end (within the run's limit), then check.
    #[track_caller]
    pub fn wait(self) -> Output {
        let o = wait_output(self.child, self.test.limit);
        self.test.check(&o);
        o
    }
}

/// For an output from elsewhere (a `Holder`, a `Child`): it exited with
/// `code`, or the test fails showing its status, stdout and stderr.
#[track_caller]
pub fn assert_exit(o: &Output, code: impl Into<i32>) {
    assert_status(o, code, "");
}

/// [`assert_exit`], saying what ran or what the code means.
#[track_caller]
pub fn assert_status(o: &Output, code: impl Into<i32>, what: &str) {
    let code = code.into();
    if o.status.code() != Some(code) {
        panic!(
            "{what}\n  exit {code} expected, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            status(o),
            clip(&String::from_utf8_lossy(&o.stdout)),
            clip(&String::from_utf8_lossy(&o.stderr))
        );
    }
}

/// `exit N` or `signal N`.
fn status(o: &Output) -> String {
    match (o.status.code(), o.status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => format!("{:?}", o.status),
    }
}

/// The program and its arguments, quoted where needed, after the
/// environment the test set.
fn show(cmd: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
        {
            s.into_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let envs = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), quote(v?))));
    let program = Path::new(cmd.get_program())
        .file_name()
        .map_or_else(|| quote(cmd.get_program()), quote);
    envs.chain([program])
        .chain(cmd.get_args().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A long output's head and tail.
fn clip(s: &str) -> String {
    const MAX: usize = 4000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let head = s.char_indices().nth(MAX / 2).map_or(s.len(), |(i, _)| i);
    let tail = s
        .char_indices()
        .rev()
        .nth(MAX / 2)
        .map_or(0, |(i, _)| i)
        .max(head);
    format!(
        "{}\n[... {} bytes ...]\n{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

/// The builder's checks can fail, and say why.
#[cfg(test)]
mod checks {
    use super::*;

    #[test]
    #[should_panic(expected = "exit 3 expected, got exit 0")]
    fn a_wrong_exit_fails_showing_both() {
        Rr::urls(&[]).arg("--version").status(3).run();
    }

    #[test]
    #[should_panic(expected = "stdout should contain \"no such text\"")]
    fn a_missing_text_fails_naming_it() {
        Rr::urls(&[])
            .arg("--version")
            .status(0)
            .stdout_has("redlock-run")
            .stdout_has("no such text")
            .run();
    }

    #[test]
    #[should_panic(expected = "left behind on")]
    fn a_key_left_behind_fails() {
        let server = RedisServer::start();
        let _: () = server.query(&["SET", "t-left", "x"]);
        Rr::on(&server).arg("--version").key_absent("t-left").run();
    }
}
