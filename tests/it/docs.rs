//! Every fenced block in README.md and docs/*.md, run as written or
//! checked (issue 26.1). One test walks the pages (so a new page is
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
//! talking to it.
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
use redlock_run::cli::{Cli, Sub};
use redlock_run::config::{Lease, Place, Program};

use crate::support::*;

/// The password of each page's server (the docs' URLs carry it).
const PASSWORD: &str = "secret";
/// The host the docs name for a Redis server.
const DOC_HOST: &str = "redis.internal:6379";
/// How long one block may run.
const BLOCK_LIMIT: Duration = Duration::from_secs(60);
/// Where the Debian package puts the binary's directory (Cargo.toml).
const PACKAGE_BIN_ASSET: &str = "\"target/release/redlock-run\", \"";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages: README.md and every docs/*.md, sorted.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
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

/// One fenced block.
#[derive(Debug, Clone)]
struct Block {
    /// `FILE:LINE` of the opening fence.
    at: String,
    lang: String,
    attrs: Vec<String>,
    body: String,
}

impl Block {
    fn no_run(&self) -> Option<&str> {
        self.attrs.iter().find_map(|a| a.strip_prefix("no-run:"))
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
    }
}

/// The fenced blocks of a Markdown page (backtick or tilde fences, the
/// closing fence at least as long as the opening one).
fn blocks(name: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    // (fence character, fence length, indentation, block)
    let mut open: Option<(char, usize, usize, Block)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let fence_len = fence_char.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match &mut open {
            None if fence_len >= 3 => {
                let c = fence_char.unwrap();
                let info = trimmed[fence_len * c.len_utf8()..].trim();
                let mut words = info.split_whitespace();
                open = Some((
                    c,
                    fence_len,
                    line.len() - trimmed.len(),
                    Block {
                        at: format!("{name}:{}", i + 1),
                        lang: words.next().unwrap_or("").to_string(),
                        attrs: words.map(str::to_string).collect(),
                        body: String::new(),
                    },
                ));
            }
            None => {}
            Some((c, len, _, _))
                if fence_char == Some(*c)
                    && fence_len >= *len
                    && trimmed[fence_len * c.len_utf8()..].trim().is_empty() =>
            {
                out.push(open.take().unwrap().3);
            }
            // A fence indented in a list: its lines lose that indentation.
            Some((_, _, indent, block)) => {
                let strip = line.len() - line.trim_start_matches(' ').len();
                block.body.push_str(&line[strip.min(*indent)..]);
                block.body.push('\n');
            }
        }
    }
    if let Some((_, _, _, block)) = open {
        out.push(Block {
            lang: "unclosed".into(),
            ..block
        });
    }
    out
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

// ---------------------------------------------------------------------
// Comparing output.

/// Does `line` match `pattern`, where `[..]` stands for any text?
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Do `lines` match `patterns`, where a pattern line `...` stands for any
/// number of lines?
fn lines_match(patterns: &[&str], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((&"...", rest)) => (0..=lines.len()).any(|i| lines_match(rest, &lines[i..])),
        Some((p, rest)) => lines
            .split_first()
            .is_some_and(|(l, ls)| line_matches(p, l) && lines_match(rest, ls)),
    }
}

fn output_matches(expected: &str, actual: &str) -> bool {
    let trim = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s.lines().map(|l| l.trim_end().to_string()).collect();
        while v.last().is_some_and(|l| l.is_empty()) {
            v.pop();
        }
        v
    };
    let (e, a) = (trim(expected), trim(actual));
    let e: Vec<&str> = e.iter().map(String::as_str).collect();
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    lines_match(&e, &a)
}

// ---------------------------------------------------------------------
// Transcripts.

/// One `$ ` command of a transcript.
#[derive(Debug)]
struct Step {
    command: String,
    expected: String,
    status: i32,
}

fn transcript(body: &str) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_command = false;
    for line in body.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: format!("{cmd}\n"),
                expected: String::new(),
                status: 0,
            });
            in_command = true;
        } else if let (true, Some(cont)) = (in_command, line.strip_prefix("> ")) {
            steps.last_mut().unwrap().command += &format!("{cont}\n");
        } else if let Some(step) = steps.last_mut() {
            in_command = false;
            step.expected += &format!("{line}\n");
        } else if !line.trim().is_empty() {
            return Err(format!("a transcript starts with `$ `, not {line:?}"));
        }
    }
    for step in &mut steps {
        let last = step.command.trim_end().lines().last().unwrap_or("");
        if let Some((_, n)) = last.rsplit_once("# exit ") {
            step.status = n
                .trim()
                .parse()
                .map_err(|_| format!("`# exit {n}`: not a number"))?;
        }
    }
    if steps.is_empty() {
        return Err("an empty transcript".into());
    }
    Ok(steps)
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

// ---------------------------------------------------------------------
// Command lines that are not run.

/// Shell words of one line: quotes and backslashes as the shell reads
/// them; an operator (`|`, `&&`, `;`, `>` ...) and a comment are words of
/// their own (`#`, `|` ...). Enough for the docs' command lines, not a
/// shell.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                has = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                has = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            '|' | '&' | ';' | '>' | '<' | '(' | ')' | '#' if !has || c != '#' => {
                // `2>&1`: the descriptor belongs to the redirection.
                if "<>".contains(c) && has && cur.chars().all(|d| d.is_ascii_digit()) {
                    cur.clear();
                    has = false;
                }
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
                out.push(c.to_string());
                if c == '#' {
                    break;
                }
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// Every `redlock-run` invocation in some shell text: its arguments, up to
/// the first operator or comment.
pub fn invocations(text: &str) -> Vec<Vec<String>> {
    let joined = text.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = line.trim_start();
        let line = line
            .strip_prefix("$ ")
            .or_else(|| line.strip_prefix("> "))
            .unwrap_or(line);
        let ws = words(line);
        let mut at_start = true;
        let mut i = 0;
        while i < ws.len() {
            let w = &ws[i];
            let program = w == "redlock-run" || (w.ends_with("/redlock-run") && !w.contains('='));
            if at_start && program {
                let args: Vec<String> = std::iter::once("redlock-run".to_string())
                    .chain(ws[i + 1..].iter().take_while(|a| !is_operator(a)).cloned())
                    .collect();
                i += args.len();
                out.push(args);
                at_start = false;
                continue;
            }
            // After `>` or `<` comes a file, not a command.
            at_start = (is_operator(w) && w != ">" && w != "<")
                || (at_start && (PREFIXES.contains(&w.as_str()) || w.contains('=')));
            i += 1;
        }
    }
    out
}

/// Words after which a command still starts.
const PREFIXES: &[&str] = &[
    "sudo", "exec", "command", "time", "nohup", "{", "!", "if", "then", "else", "elif", "do",
    "while", "until",
];

fn is_operator(w: &str) -> bool {
    ["|", "&", ";", ">", "<", "(", ")", "#"].contains(&w)
}

/// Parse and validate a command line as the binary does before it
/// connects anywhere.
pub fn check_invocation(args: &[String]) -> Result<(), String> {
    let shown = args.join(" ");
    let cli = Cli::from_command_line(args).map_err(|e| format!("{shown}\n{}", e.render()))?;
    let checked = match &cli.subcommand {
        None => Place::from_args(&cli.run.target).and_then(|place| {
            let lease = Lease::new(&cli.run.lease, cli.run.replicas.wait_replicas)?;
            place.check_limit(lease.limit)?;
            Program::from_args(&cli.run.command).map(drop)
        }),
        Some(Sub::Schedule(a)) => Place::from_args(&a.target).and_then(|place| {
            let lease = Lease::new(&a.lease, a.replicas.wait_replicas)?;
            place.check_limit(lease.limit)?;
            Program::from_args(&a.command)?;
            redlock_run::schedule::When::from_args(a).map(drop)
        }),
        Some(Sub::Status(a) | Sub::Doctor(a)) => Place::from_args(&a.target).map(drop),
        Some(Sub::Release(a)) => Place::from_args(&a.target).map(drop),
        Some(Sub::List(a)) => redlock_run::config::endpoints(&a.redis).map(drop),
        Some(Sub::Completions { .. }) => Ok(()),
    };
    checked.map_err(|f| format!("{shown}\nrefused: {f}"))
}

fn check_invocations(text: &str) -> Result<(), String> {
    invocations(text)
        .iter()
        .try_for_each(|args| check_invocation(args))
}

/// The binary's path in the Debian package, from Cargo.toml's assets.
fn package_binary() -> String {
    let toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let dir = toml
        .split_once(PACKAGE_BIN_ASSET)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(dir, _)| dir)
        .expect("Cargo.toml: the binary's deb asset");
    format!("/{}redlock-run", dir.trim_start_matches('/'))
}

fn check_crontab(block: &Block) -> Result<(), String> {
    let package = package_binary();
    let package_dir = package.trim_end_matches("/redlock-run");
    let mut path = "/usr/bin:/bin".to_string();
    let mut jobs = 0;
    for line in block.body.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap();
        if let Some((name, value)) = first.split_once('=').filter(|_| !first.starts_with('*')) {
            if name == "PATH" {
                path = value.to_string();
            }
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().take(5).collect();
        let (when, command) = if first.starts_with('@') {
            (first.to_string(), line[first.len()..].trim())
        } else {
            let when = fields.join(" ");
            let mut rest = line;
            for f in &fields {
                rest = rest.trim_start()[f.len()..].trim_start();
            }
            (when, rest)
        };
        if !when.starts_with('@') {
            croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Disallowed)
                .build()
                .parse(&when)
                .map_err(|e| format!("{line}\ntime fields {when:?}: {e}"))?;
        }
        let program = words(command)
            .into_iter()
            .find(|w| !w.contains('='))
            .unwrap_or_default();
        if program.contains('/') {
            if program != package && !program.ends_with("/.cargo/bin/redlock-run") {
                return Err(format!(
                    "{line}\n{program}: the package installs {package} (cargo install: ~/.cargo/bin)"
                ));
            }
        } else if program == "redlock-run" && !path.split(':').any(|d| d == package_dir) {
            return Err(format!(
                "{line}\ncron's PATH {path} does not have {package_dir}, where the package puts redlock-run"
            ));
        }
        check_invocations(command)?;
        jobs += 1;
    }
    if jobs == 0 {
        return Err("a crontab without a job".into());
    }
    Ok(())
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

fn check_json(block: &Block) -> Result<(), String> {
    if serde_json::from_str::<serde_json::Value>(&block.body).is_ok() {
        return Ok(());
    }
    for line in block.body.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .map_err(|e| format!("not JSON (nor JSON lines): {e}: {line}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------
// PostgreSQL, for the pages whose examples write to a database.

struct Postgres {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn bin(name: &str) -> PathBuf {
        // Debian keeps the server's programs off PATH.
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path().join("bin").join(name))
            .filter(|p| p.exists())
            .collect();
        versions.sort();
        versions.pop().unwrap_or_else(|| PathBuf::from(name))
    }

    fn start() -> Result<Postgres, String> {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // PostgreSQL refuses to run as root: as nobody, then.
        let root_user = std::os::unix::fs::MetadataExt::uid(&dir.path().metadata().unwrap()) == 0;
        let as_user = |c: &mut Command| {
            if root_user {
                c.uid(65534).gid(65534);
            }
        };
        if root_user {
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534))
                .map_err(|e| e.to_string())?;
        }
        let mut initdb = Command::new(Self::bin("initdb"));
        initdb
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data);
        as_user(&mut initdb);
        let out = initdb
            .output()
            .map_err(|e| format!("initdb (install postgresql): {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let port = free_port();
        let mut server = Command::new(Self::bin("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_user(&mut server);
        let child = server.spawn().map_err(|e| format!("postgres: {e}"))?;
        let pg = Postgres {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new("psql")
                .args([&pg.url(), "-qAtXc", "select 1"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Ok(pg);
            }
            if Instant::now() > deadline {
                return Err("postgres did not come up in 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: postgres's fast shutdown.
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGINT);
        let _ = self.child.wait();
    }
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
            "info string {other:?}: not one the docs harness knows (tests/it/docs.rs)"
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

/// The harness itself fails where it should: a failing script, a wrong
/// output, an unexpected status, a bare fence, an unknown info string, a
/// no-run without a reason, a bad option in a block that is not run, a
/// transcript in a text block, a crontab that cron would not find the binary
/// for, a host that only DNS could find.
#[test]
fn the_docs_harness_fails_a_failing_example() {
    let page = "\
```sh
false
```

```console
$ echo hello
goodbye
```

```console
$ redlock-run status --key docs-harness-free
```

```
$ echo bare
```

```zsh
echo zsh
```

```sh no-run:
echo x
```

```sh no-run:sudo
sudo redlock-run --key k --ttl soon -- true
```

```text
$ redlock-run list
```

```crontab
0 2 * * *  /usr/local/bin/redlock-run --key k -- /opt/job
```

```sh
redlock-run doctor --key k --redis redis://locks.internal:6379
```
";
    let failures = check_page("harness.md", page);
    let lines: Vec<&str> = failures.iter().map(|f| f.lines().next().unwrap()).collect();
    assert_eq!(
        lines.len(),
        10,
        "every block should fail:\n{}",
        failures.join("\n\n")
    );
    for (failure, needle) in failures.iter().zip([
        "exited Some(1)",
        "but the page shows",
        "exited Some(1), not 0",
        "without an info string",
        "\"zsh\"",
        "needs a reason",
        "soon",
        "a transcript in a text block",
        "/usr/local/bin/redlock-run",
        "locks.internal",
    ]) {
        assert!(failure.contains(needle), "{needle:?} not in:\n{failure}");
    }

    // And passes where it should: wildcards, `# exit N`, continuations,
    // state kept across a transcript's commands, a fence in a list.
    let page = "\
```console
$ x=hello
$ echo \"$x world\"
h[..]o [..]
$ printf 'a\\nb\\nc\\n'
a
...
$ redlock-run status --key docs-harness-free   # exit 1
...
$ echo one |
>   tr o O
One
```

- in a list:

  ```console
  $ echo indented
  indented
  ```

```crontab
PATH=/root/.cargo/bin:/usr/bin:/bin
*/5 * * * *  redlock-run --key k -- /opt/job
@daily       /usr/bin/redlock-run --key k -- /opt/job
```
";
    let failures = check_page("harness.md", page);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn docs_harness_words_and_invocations() {
    assert_eq!(
        words(r#"a 'b c' "d \"e\"" f\ g|h #c"#),
        ["a", "b c", "d \"e\"", "f g", "|", "h", "#"]
    );
    assert_eq!(
        invocations("X=1 redlock-run --key k -- ./x.sh --a=1 | jq .\nBIN=/x/redlock-run y\n"),
        [vec!["redlock-run", "--key", "k", "--", "./x.sh", "--a=1"]]
    );
    assert_eq!(
        invocations("$ { redlock-run status --key k --json 2>/dev/null || true; } | jq\n"),
        [vec!["redlock-run", "status", "--key", "k", "--json"]]
    );
}
