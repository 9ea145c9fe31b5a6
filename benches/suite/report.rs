//! Markdown output: one table per measurement, plus the machine it ran on.

use std::path::Path;
use std::process::Command;

/// A titled markdown table with notes under it.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, header: &[&str]) -> Self {
        Table {
            title: title.to_string(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    pub fn render(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = format!("## {}\n\n", self.title);
        out += &line(&self.header);
        out += &line(&vec!["---".to_string(); self.header.len()]);
        for r in &self.rows {
            out += &line(r);
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out += &format!("- {n}\n");
            }
        }
        out
    }
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".into())
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// What the numbers were measured on.
pub fn machine(redlock: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let usable = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb as f64 / 1048576.0));
    let redis = first_line("redis-server", &["--version"]);
    let redis = redis
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .map_or(redis.clone(), |v| format!("{v} ({redis})"));
    let commit = first_line(
        "git",
        &[
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "describe",
            "--always",
            "--dirty",
        ],
    );
    let redlock_version = first_line(&redlock.to_string_lossy(), &["--version"]);
    format!(
        "## Machine\n\n\
         | | |\n|---|---|\n\
         | CPU | {model} |\n\
         | cores | {cpus} online, {usable} usable by this process |\n\
         | memory | {mem} |\n\
         | kernel | Linux {kernel} |\n\
         | redis-server | {redis} |\n\
         | flock | {} |\n\
         | redlock-run | {redlock_version}, commit {commit}, `{}` |\n\
         | load average at start | {} |\n",
        first_line("flock", &["--version"]),
        redlock.display(),
        loadavg(),
    )
}
