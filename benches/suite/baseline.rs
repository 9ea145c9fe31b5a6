//! The baseline redlock-run that table 7 compares with: a binary, or a
//! commit built the way `scripts/ab --commit` builds one (release
//! profile, in a temporary git worktree removed afterwards, into
//! target/ab-commit), once: the binary is kept in
//! target/bench-baseline/<commit>/.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::{build_release, target_dir};

fn git() -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(env!("CARGO_MANIFEST_DIR"));
    c
}

fn git_line(args: &[&str]) -> Option<String> {
    let out = git().args(args).stderr(Stdio::null()).output().ok()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}

/// A temporary `git worktree`, removed with its directory when dropped.
struct Worktree {
    dir: tempfile::TempDir,
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let _ = git()
            .args(["worktree", "remove", "--force"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .status();
    }
}

/// The baseline binary and its label: `spec` names a binary or a commit.
pub fn baseline(spec: &str) -> Result<(PathBuf, String)> {
    let path = Path::new(spec);
    if path.is_file() {
        return Ok((path.to_path_buf(), format!("`{spec}`")));
    }
    let Some(sha) = git_line(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{spec}^{{commit}}"),
    ]) else {
        bail!("--baseline {spec:?} is neither a file nor a commit of this checkout");
    };
    let label = format!("`{spec}` ({})", &sha[..7]);
    let kept = target_dir()
        .join("bench-baseline")
        .join(&sha)
        .join("redlock-run");
    if kept.is_file() {
        return Ok((kept, label));
    }
    eprintln!("bench: building {spec} ({sha}) in a temporary worktree");
    let tree = Worktree {
        dir: tempfile::Builder::new()
            .prefix("redlock-bench-baseline.")
            .tempdir()?,
    };
    let added = git()
        .args(["worktree", "add", "--detach"])
        .arg(tree.dir.path())
        .arg(&sha)
        .stdout(std::io::stderr())
        .status()
        .context("running git worktree add")?;
    if !added.success() {
        bail!("git worktree add of {sha} failed");
    }
    let built = build_release(tree.dir.path(), &target_dir().join("ab-commit"))?;
    let dir = kept.parent().context("no parent")?;
    std::fs::create_dir_all(dir)?;
    // Copied under another name first: a half-copied binary is never used.
    let part = dir.join("redlock-run.part");
    std::fs::copy(&built, &part)?;
    std::fs::rename(&part, &kept)?;
    Ok((kept, label))
}
