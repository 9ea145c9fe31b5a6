//! The admin commands against real locks: `status` (status.rs), `release`
//! (release.rs); here `completions` and the key every command prints,
//! escaped.

pub(crate) mod release;
pub(crate) mod status;

use crate::support::*;

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = Rr::urls(&[]).args(["completions", shell]).status(0).run();
        let script = stdout(&o);
        // fish spells long options `-l key`.
        for opt in ["key", "timeout"] {
            assert!(
                script.contains(&format!("--{opt}")) || script.contains(&format!("-l {opt}")),
                "{shell}: no --{opt} in\n{script}"
            );
        }
    }
    Rr::urls(&[]).args(["completions", "tcsh"]).status(2).run();
}

/// A key holding a newline and ESC (a forged second line in red) is
/// printed escaped by every command that shows it, free or held, on
/// stdout and stderr: nothing can forge a line or drive the terminal.
#[test]
fn every_command_escapes_the_key_it_prints() {
    let server = RedisServer::start();
    let k = format!("{}x\n\x1b[31mFORGED", key("escape"));
    let clean = |what: &str, o: &std::process::Output| {
        for text in [stdout(o), stderr(o)] {
            assert!(!text.contains('\x1b'), "{what}: raw ESC in {text:?}");
            for line in text.lines().filter(|l| l.contains("FORGED")) {
                assert!(line.contains("x\\n"), "{what}: a forged line in {text:?}");
            }
        }
    };
    let status = Rr::on(&server)
        .args(["status", "--key", &k])
        .status(1)
        .stdout_has("FORGED")
        .run();
    clean("status (free)", &status);
    let _: () = redis::cmd("SET")
        .arg(&k)
        .arg("other")
        .query(&mut server.conn())
        .unwrap();
    let status = Rr::on(&server)
        .args(["status", "--key", &k])
        .status(0)
        .run();
    clean("status (held)", &status);
    let list = Rr::on(&server).args(["list"]).run();
    clean("list", &list);
    let doctor = Rr::on(&server).args(["doctor", "--key", &k]).run();
    clean("doctor", &doctor);
    let release = Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .status(0)
        .stdout_has("FORGED")
        .run();
    clean("release", &release);
    let release = Rr::on(&server)
        .args(["release", "--key", &k, "--force"])
        .run();
    clean("release (not held)", &release);
    let run = Rr::on(&server)
        .args(["--key", &k, "-vv", "--", "true"])
        .run();
    assert!(stderr(&run).contains("lock acquired"), "{}", stderr(&run));
    clean("run", &run);
    // schedule's first line names the key.
    let mut sched =
        spawn_piped(rr(&server).args(["schedule", "--key", &k, "--every", "1h", "--", "true"]));
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut err = std::io::BufReader::new(sched.stderr.as_mut().unwrap());
        while !first.contains("schedule started") {
            first.clear();
            assert!(err.read_line(&mut first).unwrap() > 0, "no start line");
        }
        // The line after it, if the key broke the line.
        let mut next = String::new();
        if !first.contains("FORGED") {
            err.read_line(&mut next).unwrap();
        }
        first.push_str(&next);
    }
    send_signal(sched.id(), nix::sys::signal::Signal::SIGTERM);
    let rest = wait_output(sched, DONE);
    assert!(!first.contains('\x1b'), "schedule: raw ESC in {first:?}");
    assert!(
        first.lines().count() == 1,
        "schedule: a forged line in {first:?}"
    );
    clean("schedule", &rest);
}
