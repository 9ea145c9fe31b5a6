//! Run counts and table selection: defaults (full or `--quick`), then
//! `BENCH_*` environment variables, then command-line options.

use std::time::Duration;

pub const USAGE: &str = "\
usage: scripts/bench [--quick] [--only 1,2,...] [OPTIONS]
       cargo bench --bench bench -- [--quick] [OPTIONS]

Prints a markdown report on stdout (progress on stderr). Every option can
also be set as an environment variable: --runs N is BENCH_RUNS=N,
--quorum-runs N is BENCH_QUORUM_RUNS=N, --quick is BENCH_QUICK=1.

  --quick              smoke run: small counts (a few seconds per table)
  --only LIST          tables to run, e.g. 1,3 (1 overhead, 2 contention,
                       3 Redis load, 4 memory, 5 schedule, 6 quorum) [1-6];
                       7, the one-holder path against --baseline, runs
                       only when listed (it builds another commit)
  --runs N             tables 1 and 7: interleaved runs per command
                       [200; quick 50]
  --reps N             tables 2 and 7: rounds per tool and contender count
                       [2; 1]
  --contenders LIST    table 2: contender counts [4,16]
  --sections N         tables 2 and 7: critical sections per contender
                       [25; 5]
  --waiters N          table 3: waiting clients [16]
  --hold SECS          table 3: how long the holder holds the lock [10; 4]
  --load-reps N        table 3: rounds per tool [1]
  --mem-reps N         table 4: runs per tool [5; 2]
  --ticks N            table 5: ticks measured [10; 3]
  --instances N        table 5: schedule instances sharing the key [3]
  --quorum-runs N      table 6: interleaved runs per master count [100; 20]
  --baseline REV       table 7: the commit to compare with (built once in a
                       temporary git worktree, cached in
                       target/bench-baseline/), or a redlock-run binary
                       [a3c86db^: before run history and --limit]
  --ab-contenders LIST table 7: contender counts [4]
";

#[derive(Debug, Clone)]
pub struct Opts {
    pub quick: bool,
    pub only: Vec<u8>,
    pub runs: usize,
    pub reps: usize,
    pub contenders: Vec<usize>,
    pub sections: usize,
    pub waiters: usize,
    pub hold: Duration,
    pub load_reps: usize,
    pub mem_reps: usize,
    pub ticks: usize,
    pub instances: usize,
    pub quorum_runs: usize,
    pub baseline: String,
    pub ab_contenders: Vec<usize>,
}

const NAMES: &[&str] = &[
    "only",
    "runs",
    "reps",
    "contenders",
    "sections",
    "waiters",
    "hold",
    "load-reps",
    "mem-reps",
    "ticks",
    "instances",
    "quorum-runs",
    "baseline",
    "ab-contenders",
];

fn count(name: &str, v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("--{name} wants a positive whole number, not {v:?}")),
    }
}

fn list<T: std::str::FromStr>(name: &str, v: &str) -> Result<Vec<T>, String> {
    v.split(',')
        .map(|x| x.trim().parse::<T>())
        .collect::<Result<Vec<T>, _>>()
        .map_err(|_| format!("--{name} wants a comma-separated list, not {v:?}"))
}

impl Opts {
    fn defaults(quick: bool) -> Self {
        Opts {
            quick,
            only: vec![1, 2, 3, 4, 5, 6],
            runs: if quick { 50 } else { 200 },
            reps: if quick { 1 } else { 2 },
            contenders: vec![4, 16],
            sections: if quick { 5 } else { 25 },
            waiters: 16,
            hold: Duration::from_secs(if quick { 4 } else { 10 }),
            load_reps: 1,
            mem_reps: if quick { 2 } else { 5 },
            ticks: if quick { 3 } else { 10 },
            instances: 3,
            quorum_runs: if quick { 20 } else { 100 },
            baseline: "a3c86db^".into(),
            ab_contenders: vec![4],
        }
    }

    fn set(&mut self, name: &str, v: &str) -> Result<(), String> {
        match name {
            "only" => {
                self.only = list(name, v)?;
                if self.only.iter().any(|t| !(1..=7).contains(t)) {
                    return Err(format!("--only takes table numbers 1 to 7, not {v:?}"));
                }
            }
            "runs" => self.runs = count(name, v)?,
            "reps" => self.reps = count(name, v)?,
            "contenders" | "ab-contenders" => {
                let counts: Vec<usize> = list(name, v)?;
                if counts.contains(&0) {
                    return Err(format!("--{name} must all be positive"));
                }
                if name == "contenders" {
                    self.contenders = counts;
                } else {
                    self.ab_contenders = counts;
                }
            }
            "sections" => self.sections = count(name, v)?,
            "waiters" => self.waiters = count(name, v)?,
            "hold" => {
                let secs: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("--hold wants seconds, not {v:?}"))?;
                if !(3.0..=600.0).contains(&secs) {
                    return Err("--hold must be between 3 and 600 seconds".into());
                }
                self.hold = Duration::from_secs_f64(secs);
            }
            "load-reps" => self.load_reps = count(name, v)?,
            "mem-reps" => self.mem_reps = count(name, v)?,
            "ticks" => self.ticks = count(name, v)?,
            "instances" => self.instances = count(name, v)?,
            "quorum-runs" => self.quorum_runs = count(name, v)?,
            "baseline" => {
                if v.trim().is_empty() {
                    return Err("--baseline wants a commit or a binary".into());
                }
                self.baseline = v.trim().to_string();
            }
            _ => return Err(format!("unknown option --{name}")),
        }
        Ok(())
    }

    /// `Ok(None)`: help was asked for.
    pub fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let env_quick =
            std::env::var("BENCH_QUICK").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        let quick = env_quick || args.iter().any(|a| a == "--quick");
        let mut o = Opts::defaults(quick);
        for name in NAMES {
            let var = format!("BENCH_{}", name.to_uppercase().replace('-', "_"));
            if let Ok(v) = std::env::var(&var) {
                o.set(name, &v).map_err(|e| format!("{var}: {e}"))?;
            }
        }
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                // cargo bench passes --bench to a harness = false target.
                "--bench" | "--quick" => {}
                "-h" | "--help" => return Ok(None),
                _ => {
                    let Some(opt) = a.strip_prefix("--") else {
                        return Err(format!("unexpected argument {a:?}"));
                    };
                    let name = opt.split_once('=').map_or(opt, |(n, _)| n);
                    if !NAMES.contains(&name) {
                        return Err(format!("unknown option --{name}"));
                    }
                    let (name, value) = match opt.split_once('=') {
                        Some((n, v)) => (n, v.to_string()),
                        None => {
                            let v = it.next().ok_or_else(|| format!("--{opt} needs a value"))?;
                            (opt, v.clone())
                        }
                    };
                    o.set(name, &value)?;
                }
            }
        }
        Ok(Some(o))
    }

    pub fn selected(&self, table: u8) -> bool {
        self.only.contains(&table)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} mode: runs={} reps={} contenders={:?} sections={} waiters={} hold={}s \
             load-reps={} mem-reps={} ticks={} instances={} quorum-runs={} baseline={} \
             ab-contenders={:?}",
            if self.quick { "quick" } else { "full" },
            self.runs,
            self.reps,
            self.contenders,
            self.sections,
            self.waiters,
            self.hold.as_secs_f64(),
            self.load_reps,
            self.mem_reps,
            self.ticks,
            self.instances,
            self.quorum_runs,
            self.baseline,
            self.ab_contenders,
        )
    }
}
