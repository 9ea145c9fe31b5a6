//! The command line: bad input is refused offline (exit 2, no TCP
//! connection at all), passwords never leak, and --help is the manual.

use std::collections::BTreeSet;
use std::net::TcpListener;

use clap::CommandFactory;
use redlock_run::Cli;
use redlock_run::help_rows;

use crate::support::*;

/// A listener nothing should ever connect to.
fn trap() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("redis://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, url)
}

fn assert_no_connection(l: &TcpListener, case: &str) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("{case}: a TCP connection was made (from {peer})"),
        Err(e) => panic!("{case}: accept failed: {e}"),
    }
}

#[test]
fn bad_input_is_refused_with_2_before_any_connection() {
    // (args, a word the first stderr line must contain)
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus", "--key", "k", "--", "true"], "--bogus"),
        (&["--ttl", "soon", "--key", "k", "--", "true"], "soon"),
        (&["--key", "", "--", "true"], "key"),
        (&["--key", "k"], "command"),
        (
            &[
                "--refresh",
                "30s",
                "--ttl",
                "30s",
                "--key",
                "k",
                "--",
                "true",
            ],
            "--refresh",
        ),
        (
            &["--kill-after", "25s", "--key", "k", "--", "true"],
            "--kill-after",
        ),
        (&["--key", "k", "--shell", "x", "--", "y"], "--shell"),
        (
            &["--redis", "localhost:6379", "--key", "k", "--", "true"],
            "localhost:6379",
        ),
        (
            &[
                "--redis",
                "rediss://127.0.0.1:1/#insecure",
                "--key",
                "k",
                "--",
                "true",
            ],
            "#insecure",
        ),
        (&["--timeout", "abc", "--key", "k", "--", "true"], "abc"),
        (&["--ttl", "1ms", "--key", "k", "--", "true"], "--ttl"),
        (&["-E", "300", "--key", "k", "--", "true"], "300"),
        (&["status"], "key"),
        (&["status", "--key", "k", "--bogus"], "--bogus"),
        (&["release", "--key", "k"], "--force"),
    ];
    let (listener, url) = trap();
    for (args, needle) in cases {
        let case = format!("{args:?}");
        let o = Rr::urls(std::slice::from_ref(&url))
            .args(*args)
            .status(2)
            .stdout("")
            .run();
        let err = stderr(&o);
        let first = err.lines().next().unwrap_or("");
        assert!(!first.trim().is_empty(), "{case}: empty first stderr line");
        assert!(
            first.contains(needle),
            "{case}: first stderr line should say what is wrong ({needle}): {first:?}"
        );
        assert_no_connection(&listener, &case);
    }

    // The same through the environment.
    Rr::urls(std::slice::from_ref(&url))
        .env("REDLOCK_KEY", "")
        .args(["--", "true"])
        .status(2)
        .run();
    Rr::urls(std::slice::from_ref(&url))
        .env("REDLOCK_TTL", "soon")
        .args(["--key", "k", "--", "true"])
        .status(2)
        .run();
    assert_no_connection(&listener, "env");
}

#[test]
fn passwords_never_reach_stderr() {
    const SECRET: &str = "hunter2secret";
    let port = free_port();
    let url = format!("redis://:{SECRET}@127.0.0.1:{port}");

    // Unreachable, through the environment and through argv, at debug level.
    let o = Rr::urls(std::slice::from_ref(&url))
        .args(["-vvv", "--key", "k", "--", "true"])
        .status(69)
        .run();
    assert!(!stderr(&o).is_empty());
    assert!(!stderr(&o).contains(SECRET), "{}", stderr(&o));

    Rr::urls(&[])
        .args([
            "--redis",
            &url,
            "--timeout",
            "300ms",
            "--key",
            "k",
            "--",
            "true",
        ])
        .status(69)
        .stderr_lacks(SECRET)
        .run();

    Rr::urls(std::slice::from_ref(&url))
        .args(["status", "--key", "k"])
        .status(69)
        .stderr_lacks(SECRET)
        .stdout_lacks(SECRET)
        .run();

    // Refused as bad input.
    for bad in [
        format!("redis://:{SECRET}@[bad"),
        format!("http://:{SECRET}@127.0.0.1:{port}"),
    ] {
        Rr::urls(std::slice::from_ref(&bad))
            .args(["--key", "k", "--", "true"])
            .status(2)
            .stderr_lacks(SECRET)
            .run();
    }
}

#[test]
fn help_documents_every_option_and_exit_code() {
    let o = Rr::urls(&[]).arg("--help").status(0).run();
    let help = stdout(&o);
    for opt in [
        "-k, --key",
        "-r, --redis",
        "-t, --timeout",
        "--ttl",
        "--refresh",
        "--min-hold",
        "--kill-after",
        "-E, --conflict-exit-code",
        "-c, --shell",
        "-v, --verbose",
        "-q, --quiet",
        "--log-format",
        "REDLOCK_KEY",
        "REDLOCK_REDIS",
        "REDLOCK_TIMEOUT",
        "REDLOCK_TTL",
        "status",
        "release",
        "doctor",
        "completions",
        "schedule",
    ] {
        assert!(help.contains(opt), "--help lacks {opt:?}:\n{help}");
    }
    let table = help
        .split_once("Exit status:")
        .unwrap_or_else(|| panic!("--help has no exit-status table:\n{help}"))
        .1;
    for code in ["<n>", "128+N", "75", "69", "70", "126/127", "2"] {
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(code)),
            "--help lacks the exit-code line for {code}:\n{help}"
        );
    }
    assert!(table.contains("the command's own exit code"));
    for var in ["REDLOCK_TOKEN", "REDLOCK_FENCING_TOKEN"] {
        assert!(help.contains(var), "--help lacks {var}");
    }

    let o = Rr::urls(&[]).arg("--version").status(0).run();
    assert_eq!(
        stdout(&o).trim(),
        format!("redlock-run {}", env!("CARGO_PKG_VERSION"))
    );
}

/// REDLOCK_LOG sets the log level like an option's environment variable:
/// used when neither -v nor -q is given, overridden by either.
#[test]
fn verbosity_flags_win_over_redlock_log() {
    let server = RedisServer::start();
    let k = key("log-level");
    let run = |env: Option<&str>, flags: &[&str]| {
        let mut t = Rr::on(&server);
        if let Some(e) = env {
            t = t.env("REDLOCK_LOG", e);
        }
        let o = t
            .args(flags)
            .args(["--key", &k, "--", "true"])
            .status(0)
            .run();
        stderr(&o)
    };
    // Default for run mode: errors only, so a clean run prints nothing.
    assert_eq!(run(None, &[]), "");
    // REDLOCK_LOG alone sets the level.
    assert!(run(Some("debug"), &[]).contains("command started"));
    // An explicit -q or -v wins over it (-vv: errors, warnings, info).
    assert_eq!(run(Some("debug"), &["-q"]), "");
    let v = run(Some("error"), &["-vv"]);
    assert!(
        v.contains("lock acquired") && !v.contains("command started"),
        "{v}"
    );
    // A bad REDLOCK_LOG is still a usage error when it is used...
    Rr::on(&server)
        .env("REDLOCK_LOG", "no=such=level")
        .args(["--key", &k, "--", "true"])
        .status(2)
        .key_absent(&k)
        .run();
}

/// A usage error names the problem on its first line, then shows the
/// synopsis of the mode that was used and no other: four non-empty lines
/// at most (the spec), as clap does by default.
#[test]
fn a_usage_error_shows_only_the_synopsis_of_its_mode() {
    // (args, a word the first line must contain, the mode's synopsis)
    let run = "Usage: redlock-run [OPTIONS] --key";
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--bogus", "--key", "k", "--", "true"], "--bogus", run),
        // Two tips from clap (a similar option; pass it after `--`): one is kept.
        (&["--tt", "1s", "--key", "k", "--", "true"], "--tt", run),
        (&["--key", "k"], "command", run),
        (&["-k", "k", "-c", "x", "--", "y"], "--shell", run),
        (
            &["--refresh", "40s", "--key", "k", "--", "true"],
            "--refresh",
            run,
        ),
        (
            // clap's own wording; the next line names --every|--cron.
            &["schedule", "--key", "k", "--", "true"],
            "required argument",
            "Usage: redlock-run schedule ",
        ),
        (
            &["schedule", "--every", "1s", "--kye", "k", "--", "true"],
            "--kye",
            "Usage: redlock-run schedule ",
        ),
        (
            &["schedule", "--every", "1s", "--key", "k"],
            "command",
            "Usage: redlock-run schedule ",
        ),
        (&["status"], "key", "Usage: redlock-run status "),
        (
            &["status", "-k", "k", "--jso"],
            "--jso",
            "Usage: redlock-run status ",
        ),
        (
            &["release", "--key", "k"],
            "--force",
            "Usage: redlock-run release ",
        ),
        (
            &["release", "--forc"],
            "--forc",
            "Usage: redlock-run release ",
        ),
        (&["doctor"], "key", "Usage: redlock-run doctor "),
        (
            &["doctor", "-k", "k", "--jsn"],
            "--jsn",
            "Usage: redlock-run doctor ",
        ),
        (
            &["completions"],
            "required argument",
            "Usage: redlock-run completions ",
        ),
    ];
    let (listener, url) = trap();
    for (args, needle, synopsis) in cases {
        let case = format!("{args:?}");
        let o = Rr::urls(std::slice::from_ref(&url))
            .args(*args)
            .status(2)
            .run();
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines[0].starts_with("error:") && lines[0].contains(needle),
            "{case}: the first line should say what is wrong ({needle}):\n{err}"
        );
        assert!(
            lines.len() <= 4,
            "{case}: {} non-empty lines, at most 4:\n{err}",
            lines.len()
        );
        // A synopsis line: "Usage: ..." or a continuation "       redlock-run ...".
        let usage: Vec<&&str> = (lines.iter())
            .filter(|l| l.starts_with("Usage:") || l.trim_start().starts_with("redlock-run "))
            .collect();
        assert!(
            usage.len() == 1 && usage[0].starts_with(synopsis),
            "{case}: the synopsis of this mode only ({synopsis}):\n{err}"
        );
        assert_no_connection(&listener, &case);
    }
}

/// The part of a Markdown page under the heading `heading` (a whole line),
/// up to the next heading of the same level.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let level = heading.split(' ').next().unwrap();
    let start = page
        .lines()
        .position(|l| l == heading)
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    let mut end = page.lines().count();
    for (i, l) in page.lines().enumerate().skip(start + 1) {
        if l.split(' ').next() == Some(level) && !l.starts_with("```") {
            end = i;
            break;
        }
    }
    let (from, to) = (line_offset(page, start), line_offset(page, end));
    &page[from..to]
}

fn line_offset(page: &str, line: usize) -> usize {
    page.split_inclusive('\n').take(line).map(str::len).sum()
}

/// The cells of each row of the Markdown tables in `text`, header and
/// separator rows left out, backticks dropped and blanks folded.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    let fold = |s: &str| {
        s.replace('`', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    text.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(fold)
                .collect::<Vec<_>>()
        })
        .filter(|cells| !matches!(cells[0].as_str(), "option" | "code"))
        .collect()
}

/// Every `--long` option named in `text`.
fn long_options(text: &str) -> BTreeSet<String> {
    text.match_indices("--")
        .map(|(i, _)| {
            let name: String = text[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            format!("--{name}")
        })
        .filter(|o| o.len() > 2)
        .collect()
}

/// docs/reference.md has a section per mode whose option tables name every
/// long option `redlock-run [<subcommand>] --help` shows, and no other.
#[test]
fn the_reference_lists_every_option_of_every_mode() {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md")).unwrap();
    let mut top = Cli::command();
    top.build();
    let modes = std::iter::once(("## Run mode".to_string(), &top)).chain(
        top.get_subcommands()
            .filter(|s| s.get_name() != "help")
            .map(|s| (format!("## `{}`", s.get_name()), s)),
    );
    for (heading, cmd) in modes {
        let shown: BTreeSet<String> = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect();
        let documented: BTreeSet<String> = table_rows(section(&page, &heading))
            .iter()
            .flat_map(|cells| long_options(&cells[0]))
            .collect();
        assert_eq!(
            documented, shown,
            "docs/reference.md, {heading}: the options in its tables (left) differ from --help's (right)"
        );
    }
}

/// The README's exit-code table is the one at the end of `--help`
/// (`exit::HELP_TABLE`), row for row.
#[test]
fn the_readme_exit_codes_are_the_ones_in_help() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let in_readme: Vec<(String, String)> = table_rows(section(&readme, "## Exit codes"))
        .into_iter()
        .map(|cells| (cells[0].clone(), cells[1].clone()))
        .collect();
    let in_help: Vec<(String, String)> = (help_rows().into_iter())
        .map(|(code, text)| (code.to_string(), text))
        .collect();
    assert!(in_help.len() >= 7, "{in_help:?}");
    assert_eq!(
        in_readme, in_help,
        "README.md's exit codes (left) against --help's (right)"
    );
}

/// The command gets the arguments redlock-run was given, byte for byte:
/// they are taken from the argv its C `main` receives, not re-encoded, so
/// bytes that are not UTF-8, empty arguments, blanks and dashes survive.
#[test]
fn arguments_reach_the_command_byte_for_byte() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;

    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let args: [&[u8]; 5] = [b"caf\xe9 \xff", b"", b"a  b", b"--", b"-k"];
    Rr::on(&server)
        .args(["--key", &key("argv"), "--", "sh", "-c"])
        .arg(r#"printf '%s\0' "$@" > args"#)
        .arg("sh")
        .args(args.map(OsStr::from_bytes))
        .current_dir(dir.path())
        .status(0)
        .run();
    let seen = std::fs::read(dir.path().join("args")).unwrap();
    let want: Vec<u8> = args.iter().flat_map(|a| [*a, b"\0"].concat()).collect();
    assert_eq!(seen, want);
}
