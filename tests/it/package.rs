//! The glibc floor of the shipped binary: `scripts/check-binary`, which
//! `scripts/package` runs on the binary it packages (built against glibc
//! 2.17 with cargo-zigbuild), fails when a binary needs a newer glibc
//! symbol, and names it.

use std::process::Command;

use crate::support::*;

const CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-binary");

/// A program that calls getrandom(3), new in glibc 2.25, built here
/// against this host's glibc.
const GETRANDOM: &str = r#"
#include <sys/random.h>
int main(void) { char b[4]; return getrandom(b, sizeof b, 0) != sizeof b; }
"#;

#[test]
fn the_glibc_floor_check_names_a_newer_symbol() {
    let prog = compile_c("getrandom", GETRANDOM, &[]);
    let o = output(
        Command::new(CHECK)
            .args(["--symbols-only", "--glibc", "2.17"])
            .arg(&prog),
    );
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "error: {} needs glibc symbols newer than 2.17",
            prog.display()
        )),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.trim() == "GLIBC_2.25 getrandom"),
        "{err}"
    );

    // The same binary passes with the floor at this host's glibc, which
    // it was built against (the newest version it can need).
    let host = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .expect("getconf");
    let host = String::from_utf8_lossy(&host.stdout);
    let host = host.trim().strip_prefix("glibc ").expect("glibc version");
    let o = output(
        Command::new(CHECK)
            .args(["--symbols-only", "--glibc", host])
            .arg(&prog),
    );
    assert_exit(&o, 0);
    assert!(
        stdout(&o).starts_with("ok: newest glibc symbol version needed: GLIBC_"),
        "{}",
        stdout(&o)
    );
}
