//! The one integration-test binary: real redis-server processes, the real
//! redlock-run binary, real signals and faults.
//!
//! One file (or folder) per behaviour: `run`, `wait`, `lease`, `signals`,
//! `limit/`, `schedule/`, `admin/` (status, release), `list`, `progress`,
//! `quorum`, `topology`, ...; `chaos/`, `model/` and `safety/` are the
//! fault suites; `support/` is what they share.
//!
//! To add a test: put it in the file of what it tests, start a server and
//! say what the run must give, as `run.rs` does:
//!
//! ```ignore
//! let server = RedisServer::start();
//! let k = key("what");
//! Rr::on(&server)
//!     .args(["--key", &k, "--", "sh", "-c", "exit 7"])
//!     .status(7)
//!     .key_absent(&k)
//!     .run();
//! ```
//!
//! A lock held meanwhile is a `Holder`; a script that must be seen running
//! first is `Sh` (it writes a ready marker: wait for it, never sleep).
//! Run one file: `cargo test --test it run:: -- --test-threads=2`.
//! The server matrix, the docs harness, the model test and the long runs:
//! ARCHITECTURE.md, "Adding a test".

mod admin;
mod advice;
mod atomic;
mod chaos;
mod cli;
mod docs;
mod doctor;
mod fencing;
mod help;
mod history;
mod holder;
mod lease;
mod limit;
mod list;
mod managed;
mod matrix;
mod model;
mod nopubsub;
mod package;
mod progress;
mod quorum;
mod refusals;
mod run;
mod safety;
mod schedule;
mod secrets;
mod servers;
mod signals;
mod support;
mod topology;
mod wait;
