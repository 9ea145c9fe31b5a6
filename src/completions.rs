//! Shell completions, generated from the clap definition. The files under
//! `completions/` are checked in; a test fails when they are stale.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The completion script for `shell`.
pub fn generate(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "redlock-run", &mut out);
    out
}

/// The checked-in file name for `shell`.
pub fn file_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "redlock-run.bash",
        Shell::Zsh => "_redlock-run",
        Shell::Fish => "redlock-run.fish",
        Shell::Elvish => "redlock-run.elv",
        Shell::PowerShell => "_redlock-run.ps1",
        _ => "redlock-run.unknown",
    }
}

pub fn print(shell: Shell) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&generate(shell)) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when `completions/` is stale; `REDLOCK_BLESS=1 cargo test`
    /// rewrites the files.
    #[test]
    fn checked_in_completions_are_fresh() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
        let bless = std::env::var_os("REDLOCK_BLESS").is_some();
        let mut stale = Vec::new();
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let path = dir.join(file_name(shell));
            let want = generate(shell);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(&want[..]) {
                stale.push(path.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "stale completions (run `REDLOCK_BLESS=1 cargo test completions`): {stale:?}"
        );
    }
}
