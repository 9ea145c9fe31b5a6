//! Command lines and files that are checked, not run: `redlock-run`
//! invocations parsed and validated as the binary would, crontabs, JSON.

use redlock_run::{Cli, Sub};
use redlock_run::{Lease, Place, Program};

use super::markdown::Block;
use super::root;

/// Where the Debian package puts the binary's directory (Cargo.toml).
const PACKAGE_BIN_ASSET: &str = "\"target/release/redlock-run\", \"";

/// Shell words of one line: quotes and backslashes as the shell reads
/// them; an operator (`|`, `&&`, `;`, `>` ...) and a comment are words of
/// their own (`#`, `|` ...). Enough for the docs' command lines, not a
/// shell.
pub(super) fn words(line: &str) -> Vec<String> {
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
pub(super) const PREFIXES: &[&str] = &[
    "sudo", "exec", "command", "time", "nohup", "{", "!", "if", "then", "else", "elif", "do",
    "while", "until",
];

pub(super) fn is_operator(w: &str) -> bool {
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
            redlock_run::When::from_args(a).map(drop)
        }),
        Some(Sub::Status(a) | Sub::Doctor(a)) => Place::from_args(&a.target).map(drop),
        Some(Sub::Release(a)) => Place::from_args(&a.target).map(drop),
        Some(Sub::List(a)) => redlock_run::endpoints(&a.redis).map(drop),
        Some(Sub::Completions { .. }) => Ok(()),
    };
    checked.map_err(|f| format!("{shown}\nrefused: {f}"))
}

pub(super) fn check_invocations(text: &str) -> Result<(), String> {
    invocations(text)
        .iter()
        .try_for_each(|args| check_invocation(args))
}

/// The binary's path in the Debian package, from Cargo.toml's assets.
pub(super) fn package_binary() -> String {
    let toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let dir = toml
        .split_once(PACKAGE_BIN_ASSET)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(dir, _)| dir)
        .expect("Cargo.toml: the binary's deb asset");
    format!("/{}redlock-run", dir.trim_start_matches('/'))
}

pub(super) fn check_crontab(block: &Block) -> Result<(), String> {
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

pub(super) fn check_json(block: &Block) -> Result<(), String> {
    if serde_json::from_str::<serde_json::Value>(&block.body).is_ok() {
        return Ok(());
    }
    for line in block.body.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .map_err(|e| format!("not JSON (nor JSON lines): {e}: {line}"))?;
    }
    Ok(())
}
