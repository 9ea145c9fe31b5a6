//! The entry point, kept thin: everything else is in the library.
//!
//! A lock wrapper's cost is mostly process start-up, so this is a C `main`
//! (`no_main`) rather than Rust's: std's start-up reads `/proc/self/maps`
//! to place a guard page for the main thread's stack-overflow message, and
//! sets up an alternate signal stack, which together cost about a tenth of
//! a millisecond per run (see README, Performance). What we need from it is
//! done here: the standard descriptors are made safe and SIGPIPE is
//! ignored. Arguments still come from `std::env` (glibc hands them to std
//! before `main`), and `std::process::exit` still flushes stdout. What is
//! lost is std's message on a stack overflow of the main thread (it is a
//! plain SIGSEGV here); nothing in this program recurses deeply.
#![no_main]

// SAFETY: this is the C entry point glibc's start-up calls once, on the
// main thread, before any other code of ours runs; no other symbol in the
// program is named `main` (std's is not generated under `no_main`).
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    redlock_run::startup::prepare_process();
    redlock_run::guardian::start_unless_admin();
    // clap's errors quote arguments, URLs included: printed redacted.
    let code = match redlock_run::cli::Cli::from_command_line(std::env::args_os()) {
        Ok(cli) => redlock_run::main(cli),
        Err(e) => redlock_run::print_clap(e),
    };
    std::process::exit(code);
}
