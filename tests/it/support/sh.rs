//! The shape most tests run: `redlock-run --key KEY [OPTIONS] -- sh -c
//! SCRIPT`, whose script writes a marker file once it runs (`echo $$ >
//! ready`) so that the test waits for that, never sleeps. A small builder,
//! after just's `Test`: say what differs, then run it.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use super::{Rr, output, read_pid, rr_urls, spawn_piped};

/// How long a script may take to write its ready marker.
pub const READY: Duration = Duration::from_secs(10);
/// How long a run may take to end once it should.
pub const DONE: Duration = Duration::from_secs(20);

/// `redlock-run --key KEY [OPTIONS] -- sh -c SCRIPT [ARGS]`, over the
/// masters at `urls` (REDLOCK_REDIS), run in `dir`: the script's relative
/// paths (its markers) land there.
pub struct Sh<'a> {
    urls: &'a [String],
    key: &'a str,
    dir: &'a Path,
    script: &'a str,
    opts: Vec<&'a str>,
    args: Vec<OsString>,
}

impl<'a> Sh<'a> {
    pub fn new(urls: &'a [String], key: &'a str, dir: &'a Path, script: &'a str) -> Self {
        Sh {
            urls,
            key,
            dir,
            script,
            opts: Vec::new(),
            args: Vec::new(),
        }
    }

    /// redlock-run options (before `--`).
    pub fn opts(mut self, opts: &[&'a str]) -> Self {
        self.opts.extend_from_slice(opts);
        self
    }

    /// An argument for the script (`$0`, `$1`, ... after `sh -c SCRIPT`).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The command, not yet started.
    pub fn command(&self) -> Command {
        let mut c = rr_urls(self.urls);
        c.args(["--key", self.key])
            .args(&self.opts)
            .args(["--", "sh", "-c", self.script])
            .args(&self.args)
            .current_dir(self.dir);
        c
    }

    /// As an [`Rr`]: add expectations, then `run` or `spawn`.
    pub fn test(&self) -> Rr<'static> {
        Rr::command(self.command())
    }

    /// Started in the background, stdout and stderr piped (collect them
    /// with `wait_output(child, DONE)`).
    pub fn start(&self) -> Child {
        spawn_piped(&mut self.command())
    }

    /// Started as [`Sh::start`], once its script has written its PID to
    /// `ready` in `dir` (`echo $$ > ready`): the run and that PID.
    pub fn start_ready(&self) -> (Child, i32) {
        let child = self.start();
        let pid = read_pid(&self.dir.join("ready"));
        (child, pid)
    }

    /// Run to completion.
    pub fn output(&self) -> Output {
        output(&mut self.command())
    }
}
