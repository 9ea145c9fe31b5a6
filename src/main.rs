//! The entry point, kept thin: everything else is in the library.
//!
//! A lock wrapper's cost is mostly process start-up, so this is a C `main`
//! (`no_main`) rather than Rust's: std's start-up reads `/proc/self/maps`
//! to place a guard page for the main thread's stack-overflow message, and
//! sets up an alternate signal stack, which together cost about a tenth of
//! a millisecond per run (see docs/performance.md). What we need from it
//! is done here: the standard descriptors are made safe and SIGPIPE is
//! ignored. The arguments are taken from the `argc`/`argv` this `main`
//! receives (not from `std::env::args`, which only glibc fills in before
//! `main`), and `std::process::exit` still flushes stdout. What is lost is
//! std's message on a stack overflow of the main thread (it is a plain
//! SIGSEGV here); nothing in this program recurses deeply.
#![no_main]

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStrExt as _;

// SAFETY: this is the C entry point the C runtime's start-up calls once, on
// the main thread, before any other code of ours runs; no other symbol in
// the program is named `main` (std's is not generated under `no_main`).
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    redlock_run::prepare_process();
    let args: Vec<OsString> = (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: the C runtime passes `argc` pointers in `argv`, each to
            // a NUL-terminated string that lives as long as the process
            // (C11 5.1.2.2.1); nothing writes to them while we copy them.
            let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect();
    std::process::exit(redlock_run::main(args));
}
