//! Every fenced block in README.md, ARCHITECTURE.md and docs/*.md, run
//! as written or checked (issue 26.1). One test walks the pages (so a new page is
//! covered without being listed), each page against its own real
//! redis-server on a free port, its blocks in order, as a reader following
//! the page in one terminal would. A block's info string says what it is:
//!
//! - `console`: a transcript, run. `$ ` starts a command (`> ` continues
//!   it), the lines up to the next `$ ` are its expected output (stdout and
//!   stderr as a terminal shows them), where `[..]` stands for any text
//!   within a line and a line `...` for any number of lines. A command
//!   exits 0 unless its last line ends with a comment `# exit N`.
//! - `sh` (or `bash`): a script, run with `bash -euo pipefail`; it must
//!   exit 0. It shows no output (a `console` block does). `sh file=NAME`:
//!   the file NAME that later blocks use (written executable into the
//!   page's directory, syntax-checked, not run by itself).
//! - `sql`: run with `psql` against a throwaway PostgreSQL, started for the
//!   page; later blocks get its URL as `DATABASE_URL`.
//! - `crontab`: checked: five time fields that parse, `NAME=value` lines,
//!   and a command that cron's PATH (`/usr/bin:/bin` unless the crontab
//!   sets `PATH=`) finds where the package installs it.
//! - `ini` whose first line is `# /etc/systemd/system/UNIT`: a systemd
//!   unit, checked with `systemd-analyze verify`; its `ExecStart` must be
//!   the package's path (Cargo.toml's deb assets).
//! - `json`: must parse (a value, or one per line).
//! - `text` (output, formulas, synopses), `ini`, `toml`, `rust`, `lua`,
//!   `yaml`: not run; a `$ ` line in a `text` block is refused (a
//!   transcript is `console`).
//! - `sh no-run:REASON` / `console no-run:REASON`: what cannot run on one
//!   machine (dpkg, sudo, a release build, the test suite itself, a
//!   command that runs until stopped); REASON says which. Its syntax is
//!   checked (`bash -n`), and so is every `redlock-run` command line in it
//!   (parsed and validated as the binary would, without running it).
//!
//! A fence without an info string, or with one not listed here, fails: a
//! new example either runs or says why it cannot.
//!
//! Every block that runs gets: the built binary first on PATH; a fresh
//! HOME; the page's working directory, with the stand-in scripts of
//! tests/doc-fixtures (`./report.sh`, `./deploy.sh`, ...); `REDLOCK_REDIS`
//! pointing at the page's server (unless the block sets
//! `REDLOCK_REDIS_FILE` itself), which requires the password `secret`;
//! `redis.internal:6379` in the block meaning that server (and in its
//! output, that server shown as `redis.internal:6379`); and `redis-cli`
//! talking to it. Another `.internal` host in a block that runs is refused
//! (only DNS could find it); each block may run for 60 s at most, and what
//! it left in the background gets SIGTERM when it ends.
//!
//! `REDLOCK_DOCS=reference` runs only the pages whose path contains
//! `reference`.
//!
//! Why not trycmd (clap's Markdown runner, whose `[..]`/`...` this borrows):
//! it runs each `$ ` line as one argv, without a shell, so none of the
//! docs' pipes into `jq`, `|| rc=$?`, `case`, `export`, heredocs or
//! background holders would run, and a page cannot get a server of its own
//! on a free port.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::support::*;

mod architecture;
mod harness;
mod markdown;
mod postgres;
mod shell;

use markdown::{Block, blocks, output_matches, transcript};
use postgres::Postgres;
use shell::{check_crontab, check_invocations, check_json, package_binary};
pub use shell::{check_invocation, invocations};

/// The password of each page's server (the docs' URLs carry it).
const PASSWORD: &str = "secret";
/// The host the docs name for a Redis server.
const DOC_HOST: &str = "redis.internal:6379";
/// How long one block may run.
const BLOCK_LIMIT: Duration = Duration::from_secs(60);

pub(super) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages: README.md, ARCHITECTURE.md and every docs/*.md, sorted.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md"), root().join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    if let Ok(only) = std::env::var("REDLOCK_DOCS") {
        pages.retain(|p| p.to_string_lossy().contains(&only));
    }
    pages
}

/// A program's path on PATH.
fn which(name: &str) -> String {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not on PATH"))
        .display()
        .to_string()
}

/// What a page's blocks share: its server, directories, and maybe a
/// PostgreSQL.
struct Page {
    server: RedisServer,
    dir: tempfile::TempDir,
    postgres: Option<Postgres>,
    /// Systemd units seen so far (a timer needs its service beside it).
    units: BTreeMap<String, String>,
}

impl Page {
    fn new() -> Page {
        let server = RedisServer::start_with_password(PASSWORD);
        let dir = tempfile::tempdir().unwrap();
        for sub in ["work", "home", "bin"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(bin(), dir.path().join("bin/redlock-run")).unwrap();
        // `redis-cli` in an example talks to the page's server too (never
        // to 6379); options given after these override them.
        let cli = dir.path().join("bin/redis-cli");
        std::fs::write(
            &cli,
            format!(
                "#!/bin/sh\nexec {} -p {} -a {PASSWORD} --no-auth-warning \"$@\"\n",
                which("redis-cli"),
                server.port
            ),
        )
        .unwrap();
        std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
        let fixtures = root().join("tests/doc-fixtures");
        for e in std::fs::read_dir(&fixtures).expect("tests/doc-fixtures") {
            let e = e.unwrap();
            let to = dir.path().join("work").join(e.file_name());
            std::fs::copy(e.path(), &to).unwrap();
        }
        Page {
            server,
            dir,
            postgres: None,
            units: BTreeMap::new(),
        }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn local(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }

    /// The docs' server names made this page's.
    fn to_local(&self, text: &str) -> String {
        text.replace(DOC_HOST, &self.local())
    }

    /// [`Page::to_local`], refusing a block that names another `.internal`
    /// host: it would be looked up in DNS, and no test server is there.
    fn runnable(&self, text: &str) -> Result<String, String> {
        let local = self.to_local(text);
        match local.find(".internal") {
            Some(i) => Err(format!(
                "{:?}: only {DOC_HOST} is a server here (the page's); use it, or mark the block no-run:REASON",
                local[..i + 9]
                    .rsplit(|c: char| c.is_whitespace() || c == '/' || c == '@')
                    .next()
                    .unwrap_or("")
            )),
            None => Ok(local),
        }
    }

    /// Output with this page's server shown as the docs name it.
    fn to_doc(&self, text: &str) -> String {
        text.replace(&self.local(), DOC_HOST)
    }

    /// `bash` with the page's environment, in its own process group.
    fn bash(&self, args: &[&str]) -> Command {
        self.bash_for("", args)
    }

    /// [`Page::bash`] for a block's text: one that sets REDLOCK_REDIS_FILE
    /// itself gets no REDLOCK_REDIS (both set are refused).
    fn bash_for(&self, text: &str, args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.args(args)
            .current_dir(self.work())
            .env_clear()
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.dir.path().join("bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("HOME", self.dir.path().join("home"))
            .env("USER", std::env::var("USER").unwrap_or("root".into()))
            .env("LANG", "C.UTF-8")
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .process_group(0);
        if !text.contains("REDLOCK_REDIS_FILE") {
            c.env(
                "REDLOCK_REDIS",
                format!("redis://:{PASSWORD}@{}", self.local()),
            );
        }
        if let Some(pg) = &self.postgres {
            c.env("DATABASE_URL", pg.url());
        }
        c
    }

    fn postgres(&mut self) -> Result<&Postgres, String> {
        if self.postgres.is_none() {
            self.postgres = Some(Postgres::start()?);
        }
        Ok(self.postgres.as_ref().unwrap())
    }
}

/// What a finished block printed and how it ended.
struct Ran {
    output: String,
    status: Option<i32>,
}

/// Run `cmd` (a bash in its own process group) to its end, then stop what
/// it left in the background: SIGTERM to the group (a redlock-run there
/// releases its lock), SIGKILL what is left after 10 s.
fn run_group(mut cmd: Command) -> Result<Ran, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("bash: {e}"))?;
    let pgid = Pid::from_raw(child.id() as i32);
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(BLOCK_LIMIT) {
        Ok(s) => s.ok().and_then(|s| s.code()),
        Err(_) => {
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = reader.join();
            return Err(format!("still running after {BLOCK_LIMIT:?}: killed"));
        }
    };
    // Background jobs (a holder started with `&`) share the group.
    if killpg(pgid, Signal::SIGTERM).is_ok() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while killpg(pgid, None).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    let output = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    Ok(Ran { output, status })
}

fn run_console(page: &Page, block: &Block) -> Result<(), String> {
    let steps = transcript(&block.body)?;
    // One shell for the whole transcript, as in a terminal; a record
    // separator and the status after each command.
    let mut script = String::from("exec 2>&1\nset -uo pipefail\n");
    for step in &steps {
        script += &page.runnable(&step.command)?;
        script += "printf '\\036%s\\036' \"$?\"\n";
    }
    let ran = run_group(page.bash_for(&block.body, &["-c", &script]))?;
    let mut pieces = ran.output.split('\u{1e}');
    for step in &steps {
        let shown = format!("$ {}", step.command.trim_end());
        let Some(output) = pieces.next() else {
            return Err(format!("{shown}\nthe shell ended before it"));
        };
        let output = page.to_doc(output);
        let status: Option<i32> = pieces.next().and_then(|s| s.parse().ok());
        if status != Some(step.status) {
            return Err(format!(
                "{shown}\nexited {status:?}, not {} (end the command with `# exit N` if that is expected); it printed:\n{output}",
                step.status
            ));
        }
        if !output_matches(&step.expected, &output) {
            return Err(format!(
                "{shown}\nprinted:\n{output}\nbut the page shows:\n{}",
                step.expected
            ));
        }
    }
    Ok(())
}

fn run_script(page: &Page, block: &Block) -> Result<(), String> {
    let script = format!("exec 2>&1\n{}", page.runnable(&block.body)?);
    let ran = run_group(page.bash_for(&block.body, &["-euo", "pipefail", "-c", &script]))?;
    if ran.status != Some(0) {
        return Err(format!(
            "exited {:?}, not 0; it printed:\n{}",
            ran.status,
            page.to_doc(&ran.output)
        ));
    }
    Ok(())
}

fn write_file(page: &Page, block: &Block, name: &str) -> Result<(), String> {
    let path = page.work().join(name);
    std::fs::write(&path, page.runnable(&block.body)?).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    syntax(page, &block.body)
}

/// `bash -n`: the block parses as shell.
fn syntax(page: &Page, text: &str) -> Result<(), String> {
    let ran = run_group(page.bash(&["-n", "-c", &format!("exec 2>&1\n{text}")]))?;
    match ran.status {
        Some(0) => Ok(()),
        _ => Err(format!("not valid shell: {}", ran.output)),
    }
}

/// A systemd unit: `systemd-analyze verify` beside the page's other units,
/// and an `ExecStart` that is the package's binary.
fn check_unit(page: &mut Page, block: &Block, name: &str) -> Result<(), String> {
    let package = package_binary();
    for line in block.body.lines() {
        if let Some(exec) = line.strip_prefix("ExecStart=") {
            let program = exec.split_whitespace().next().unwrap_or("");
            if program != package {
                return Err(format!(
                    "{line}\nthe package installs {package}, not {program}"
                ));
            }
            check_invocations(exec)?;
        }
    }
    page.units.insert(name.to_string(), block.body.clone());
    let Ok(which) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("{}: systemd-analyze not installed: not verified", block.at);
        return Ok(());
    };
    assert!(which.status.success());
    let dir = page.dir.path().join("units");
    std::fs::create_dir_all(&dir).unwrap();
    for (n, text) in &page.units {
        std::fs::write(dir.join(n), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join(name))
        .output()
        .map_err(|e| e.to_string())?;
    // The binary is not installed here: that one complaint is expected.
    let missing = format!("Command {package} is not executable");
    let complaints: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap_or("")
        .lines()
        .chain(std::str::from_utf8(&out.stdout).unwrap_or("").lines())
        .filter(|l| !l.trim().is_empty() && !l.contains(&missing))
        .collect();
    if !complaints.is_empty() {
        return Err(format!(
            "systemd-analyze verify {name}:\n{}",
            complaints.join("\n")
        ));
    }
    Ok(())
}

fn run_sql(page: &mut Page, block: &Block) -> Result<(), String> {
    let url = page.postgres()?.url();
    let out = Command::new("psql")
        .args([&url, "-qX", "-v", "ON_ERROR_STOP=1", "-c", &block.body])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

// ---------------------------------------------------------------------

/// Run or check one block.
fn check_block(page: &mut Page, block: &Block) -> Result<(), String> {
    let shell = ["sh", "bash", "console"].contains(&block.lang.as_str());
    if let Some(reason) = block.no_run() {
        if !shell {
            return Err("no-run is for sh and console blocks".into());
        }
        if reason.is_empty() {
            return Err("no-run needs a reason: no-run:REASON".into());
        }
        let text = if block.lang == "console" {
            transcript(&block.body)?
                .iter()
                .map(|s| s.command.clone())
                .collect()
        } else {
            block.body.clone()
        };
        syntax(page, &text)?;
        return check_invocations(&text);
    }
    let first = block.body.lines().next().unwrap_or("");
    match block.lang.as_str() {
        "console" => run_console(page, block),
        "sh" | "bash" => match block.attr("file") {
            Some(name) => write_file(page, block, name),
            None => run_script(page, block),
        },
        "sql" => run_sql(page, block),
        "crontab" => check_crontab(block),
        // The unit's name: the first word after the path (a note may follow).
        "ini" => match first.strip_prefix("# /etc/systemd/system/") {
            Some(unit) => check_unit(page, block, unit.split_whitespace().next().unwrap_or("")),
            None => Ok(()),
        },
        "json" => check_json(block),
        "text" => match block.body.lines().find(|l| l.starts_with("$ ")) {
            Some(l) => Err(format!(
                "{l:?}: a transcript in a text block; make it `console` (run) or `console no-run:REASON`"
            )),
            None => Ok(()),
        },
        "toml" | "rust" | "lua" | "yaml" => Ok(()),
        "" => Err(
            "a fence without an info string: `console`/`sh` to run it, `sh no-run:REASON`, or `text` for output"
                .into(),
        ),
        other => Err(format!(
            "info string {other:?}: not one the docs harness knows (tests/it/docs/mod.rs)"
        )),
    }
}

/// Every block of one page, in order; the failures.
fn check_page(name: &str, text: &str) -> Vec<String> {
    let mut page = Page::new();
    let mut failures = Vec::new();
    let blocks = blocks(name, text);
    let ran = |b: &&Block| {
        ["console", "sh", "bash", "sql"].contains(&b.lang.as_str())
            && b.no_run().is_none()
            && b.attr("file").is_none()
    };
    let not_run: Vec<&str> = blocks.iter().filter_map(Block::no_run).collect();
    eprintln!(
        "{name}: {} blocks, {} run, {} no-run {not_run:?}",
        blocks.len(),
        blocks.iter().filter(ran).count(),
        not_run.len()
    );
    for block in &blocks {
        let t = Instant::now();
        if let Err(e) = check_block(&mut page, block) {
            failures.push(format!(
                "{} ```{} {}\n{}",
                block.at,
                block.lang,
                block.attrs.join(" "),
                e.trim_end()
            ));
        }
        let took = t.elapsed();
        if took > Duration::from_secs(5) {
            eprintln!("{}: {took:?}", block.at);
        }
    }
    failures
}

#[test]
fn every_example_in_the_docs_runs_as_written() {
    let t = Instant::now();
    let pages = pages();
    assert!(!pages.is_empty(), "no page matches REDLOCK_DOCS");
    // Two at a time: each page has a server of its own.
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<Vec<PathBuf>> = (0..2)
            .map(|i| pages.iter().skip(i).step_by(2).cloned().collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .flat_map(|p| {
                            let name = p.strip_prefix(root()).unwrap().display().to_string();
                            check_page(&name, &std::fs::read_to_string(p).unwrap())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    eprintln!("docs: {} pages in {:?}", pages.len(), t.elapsed());
    assert!(
        failures.is_empty(),
        "{} doc example(s) fail:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
