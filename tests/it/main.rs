//! The one integration-test binary: real redis-server processes, the real
//! redlock-run binary, real signals and faults.

mod admin;
mod atomic;
mod chaos;
mod cli;
mod doctor;
mod documented;
mod fencing;
mod glance;
mod history;
mod holder;
mod lease;
mod limit;
mod limit_attack;
mod limit_status;
mod nopubsub;
mod quorum;
mod refusals;
mod run;
mod safety;
mod schedule;
mod secrets;
mod signals;
mod support;
mod topology;
mod wait;
