//! A Jepsen-style safety suite: many `redlock-run` contenders on one key,
//! real faults (per-contender TCP proxies, SIGSTOP/SIGKILL/restarts of
//! `redis-server`, holders killed or frozen, commands that ignore
//! SIGTERM), and a checker that reads what every critical section
//! recorded and asserts the contract's guarantees.
//!
//! - `section.c` / `section`: the command each contender runs; it stamps
//!   its start and end on CLOCK_MONOTONIC, writes its fencing token into a
//!   "resource" that refuses stale tokens, and its death is seen through a
//!   FIFO it holds open.
//! - `harness`: the world (servers, proxies, parameters, what is recorded);
//!   `threads`: its contender loops and its samplers of the key's value and
//!   PTTL on every master.
//! - `faults`: the fault injectors, each logged as an event.
//! - `checker` and `lease_checks`: the guarantees as assertions over runs,
//!   samples and events; `report`: what they found, counted and merged;
//!   `checker_tests`: the checker itself on hand-built histories.
//! - `scenarios`: the seeded CI set; `soak`: the long randomized run
//!   (`REDLOCK_SOAK=<minutes> cargo test --test it --release soak --
//!   --ignored --nocapture`).
//! - `fuzz` (with `fuzz_servers` and `fuzz_cases`): random command lines
//!   against real servers.
//!
//! Chaos tests take a process-wide lock so that only one runs at a time:
//! their load would otherwise blur each other's timing.

mod checker;
mod checker_tests;
mod faults;
mod fuzz;
mod fuzz_cases;
mod fuzz_servers;
mod harness;
mod lease_checks;
mod report;
mod scenarios;
mod section;
mod soak;
mod stale_undo;
mod threads;

use std::sync::{Mutex, MutexGuard};

/// Only one chaos test at a time (a failed one must not block the rest).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Nanoseconds on CLOCK_MONOTONIC: the clock the section helper stamps
/// with, so the test's and the helpers' times compare directly.
pub fn mono_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// xorshift64*: a small deterministic PRNG, so a seed replays a schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Never zero (a zero state stays zero), and decorrelate small seeds.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// A new generator for a sub-task, so that adding draws in one place
    /// does not shift every other stream.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// Milliseconds, for reports.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}
