//! What the background threads of a world do: each contender runs
//! `redlock-run` on the key in a loop and records every run; each sampler
//! reads the key's value and PTTL on one master.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::harness::{Live, Params, Run, Sample, Shared};
use super::section::{DeathWatch, Section, helper};
use super::{Rng, mono_ns};
use crate::support::{alive, rr_urls};

/// One contender: `redlock-run ... -- section DIR RUN US [term]`, again and
/// again until told to stop.
pub fn contender(
    sh: &Shared,
    c: usize,
    urls: &[String],
    base: &[OsString],
    mut rng: Rng,
    p: &Params,
) {
    while !sh.stop.load(Ordering::SeqCst) {
        let id = sh.next_run.fetch_add(1, Ordering::SeqCst);
        let long = rng.chance(p.long);
        let (lo, hi) = if long { (1200, 2500) } else { p.section_ms };
        let dur_us = rng.range(lo * 1000, hi * 1000);
        let term = rng.chance(p.term_ignoring);
        let stderr = sh.dir.join(format!("err-{id}"));
        let watch = DeathWatch::start(&sh.dir, id);
        let mut cmd = rr_urls(urls);
        cmd.env("REDLOCK_LOG", "info")
            .args(base)
            .arg("--")
            .arg(helper())
            .arg(&sh.dir)
            .arg(id.to_string())
            .arg(dur_us.to_string());
        if term {
            cmd.arg("term");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("stderr file"));
        let spawned = mono_ns();
        let mut child = cmd.spawn().expect("spawn redlock-run");
        sh.live.lock().unwrap().insert(
            id,
            Live {
                contender: c,
                rr_pid: child.id() as i32,
                long,
                term_ignoring: term,
                section_us: dur_us,
            },
        );
        let status = child.wait().expect("wait for redlock-run");
        let exited = mono_ns();
        let section = Section::read(&sh.dir, id);
        let mut outlived = None;
        match &section {
            Some(s) if alive(s.pid) => {
                // redlock-run reaps its command's whole group before it
                // exits; only a SIGKILLed one leaves the kernel to finish
                // the job (PDEATHSIG), a moment later (a loaded 2-core CI
                // machine can take a few hundred ms to schedule the death).
                let grace = if status.signal().is_some() {
                    Duration::from_millis(1000)
                } else {
                    Duration::ZERO
                };
                let until = Instant::now() + grace;
                while alive(s.pid) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if alive(s.pid) {
                    outlived = Some(format!(
                        "run {id}: command pid {} still alive {:?} after redlock-run exited ({status})",
                        s.pid, grace
                    ));
                    let _ = kill(Pid::from_raw(s.pid), Signal::SIGKILL);
                }
            }
            Some(_) => {}
            None => watch.release(),
        }
        sh.live.lock().unwrap().remove(&id);
        let death = watch.join();
        sh.runs.lock().unwrap().push(Run {
            id,
            contender: c,
            spawned,
            exited,
            code: status.code(),
            signal: status.signal(),
            death: section.as_ref().map(|_| death),
            section,
            outlived,
            term_ignoring: term,
            stderr,
        });
    }
}

/// GET + PTTL of the key every ~2 ms on one master, on a direct connection.
pub fn sampler(sh: &Shared, m: usize, port: u16) {
    let addr = format!("redis://127.0.0.1:{port}");
    let mut conn: Option<redis::Connection> = None;
    while !sh.stop_sampling.load(Ordering::SeqCst) {
        if conn.is_none() {
            conn = redis::Client::open(addr.as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(100)))
                .ok();
            match &conn {
                Some(c) => {
                    let t = Some(Duration::from_millis(100));
                    let _ = c.set_read_timeout(t);
                    let _ = c.set_write_timeout(t);
                }
                None => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            }
        }
        let c = conn.as_mut().unwrap();
        let t_send = mono_ns();
        let r: redis::RedisResult<(Option<String>, i64)> = redis::pipe()
            .cmd("GET")
            .arg(&sh.key)
            .cmd("PTTL")
            .arg(&sh.key)
            .query(c);
        let t_recv = mono_ns();
        match r {
            Ok((value, pttl)) => sh.samples[m].lock().unwrap().push(Sample {
                t_send,
                t_recv,
                value,
                pttl,
            }),
            // Frozen, down or restarting: no evidence either way.
            Err(_) => conn = None,
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
