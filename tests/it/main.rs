//! The one integration-test binary: real redis-server processes, the real
//! redlock-run binary, real signals and faults.

mod admin;
mod advice;
mod atomic;
mod chaos;
mod cli;
mod docs;
mod doctor;
mod fencing;
mod first_day;
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
