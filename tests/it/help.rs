//! Help and man pages, as a first-day user meets them before reading the
//! docs: help that ends with examples (`-h` within one screen), every
//! example a valid command line, man pages with EXAMPLES and EXIT STATUS.

use redlock_run::{RUN_A_COMMAND, RUN_NOTHING};

use crate::support::*;

/// `-h` fits on one screen (at most 50 lines at 100 columns; it was 71
/// before the short summaries) and ends with examples; `--help` ends with
/// every example of its mode, each after a comment, then the exit codes.
#[test]
fn help_ends_with_examples_and_h_fits_one_screen() {
    let modes: Vec<Option<&str>> = std::iter::once(None)
        .chain(RUN_NOTHING.iter().chain(RUN_A_COMMAND).map(|s| Some(*s)))
        .filter(|m| *m != Some("help"))
        .collect();
    for mode in modes {
        let help = |flag: &str| {
            let mut c = rr_urls(&[]);
            c.env("COLUMNS", "100").args(mode).arg(flag);
            let o = output(&mut c);
            assert_status(&o, 0, &format!("{mode:?} {flag}"));
            stdout(&o)
        };
        let (short, long) = (help("-h"), help("--help"));
        let lines = short.lines().count();
        eprintln!(
            "{mode:?}: -h {lines} lines, --help {}",
            long.lines().count()
        );
        assert!(lines <= 50, "{mode:?}: -h is {lines} lines:\n{short}");
        let examples = redlock_run::examples(mode);
        assert!(!examples.is_empty(), "{mode:?}: no examples");
        assert!(short.contains("\nExamples:\n  "), "{mode:?} -h:\n{short}");
        for e in examples {
            assert!(
                long.contains(&format!("  # {}\n  {}\n", e.what, e.command)),
                "{mode:?} --help lacks {:?}:\n{long}",
                e.command
            );
        }
        let exit_at = long.find("Exit status:").expect("an exit-status table");
        assert!(long.find("Examples:").unwrap() < exit_at, "{mode:?}");
    }
}

/// Every example in `--help` (and so in the man pages) parses and passes
/// the checks the binary makes before it connects anywhere.
#[test]
fn every_help_example_is_a_valid_command_line() {
    let mut n = 0;
    for mode in [
        None,
        Some("schedule"),
        Some("status"),
        Some("release"),
        Some("doctor"),
        Some("list"),
        Some("completions"),
    ] {
        for e in redlock_run::examples(mode) {
            let found = crate::docs::invocations(e.command);
            assert_eq!(found.len(), 1, "{:?}: one redlock-run in it", e.command);
            crate::docs::check_invocation(&found[0]).unwrap_or_else(|err| panic!("{err}"));
            n += 1;
        }
    }
    assert!(n >= 10, "{n} examples");
}

/// Every man page has EXAMPLES and EXIT STATUS sections (the pages are
/// generated; `checked_in_man_pages_are_fresh` keeps them so).
#[test]
fn every_man_page_has_examples_and_exit_status() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut pages = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let page = std::fs::read_to_string(&path).unwrap();
        for section in [".SH EXAMPLES", ".SH \"EXIT STATUS\""] {
            assert!(page.contains(section), "{}: no {section}", path.display());
        }
        pages += 1;
    }
    assert!(pages >= 7, "{pages} man pages");
}
