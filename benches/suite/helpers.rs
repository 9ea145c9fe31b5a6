//! The small programs the measurements run, as modes of the bench binary
//! itself, so that no shell sits in a measured path:
//!
//! - `--section FILE MS`: a critical section; appends `start <ns> <pid>`,
//!   sleeps MS, appends `end <ns> <pid>` (CLOCK_MONOTONIC, comparable
//!   across processes).
//! - `--poll-lock KEY PORT -- CMD...`: the hand-written lock redlock-run
//!   replaces: `SET KEY token NX PX 30000` every 100 ms until it succeeds
//!   (60 s at most, then exit 75), run CMD, compare-and-delete.
//! - `--tick-record FILE`: appends `tick <wall ns> <REDLOCK_TICK>`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::time::{ClockId, clock_gettime};

/// The polling baseline's pause between attempts.
pub const POLL_EVERY: Duration = Duration::from_millis(100);

const COMPARE_AND_DELETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Runs a helper mode if `args` asks for one; returns its exit code.
pub fn dispatch(args: &[String]) -> Option<i32> {
    let code = match args.first()?.as_str() {
        "--section" => section(&args[1..]),
        "--poll-lock" => poll_lock(&args[1..]),
        "--tick-record" => tick_record(&args[1..]),
        _ => return None,
    };
    Some(code.unwrap_or_else(|e| {
        eprintln!("bench helper {}: {e}", args[0]);
        1
    }))
}

pub fn mono_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

pub fn wall_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i128
}

/// One `write(2)` on an O_APPEND file: lines from concurrent processes
/// never interleave.
fn append(path: &str, line: &str) -> std::io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

fn section(args: &[String]) -> Result<i32, String> {
    let [file, ms] = args else {
        return Err("usage: --section FILE MS".into());
    };
    let ms: u64 = ms.parse().map_err(|_| format!("bad MS {ms:?}"))?;
    let pid = std::process::id();
    append(file, &format!("start {} {pid}\n", mono_ns())).map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(ms));
    append(file, &format!("end {} {pid}\n", mono_ns())).map_err(|e| e.to_string())?;
    Ok(0)
}

fn poll_lock(args: &[String]) -> Result<i32, String> {
    let (Some(key), Some(port), Some("--"), Some(cmd)) = (
        args.first(),
        args.get(1),
        args.get(2).map(String::as_str),
        args.get(3..).filter(|c| !c.is_empty()),
    ) else {
        return Err("usage: --poll-lock KEY PORT -- CMD...".into());
    };
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let token = format!("poll-{}-{}", std::process::id(), mono_ns());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        if got.is_some() {
            break;
        }
        if Instant::now() >= deadline {
            return Ok(75);
        }
        std::thread::sleep(POLL_EVERY);
    }
    let status = Command::new(&cmd[0]).args(&cmd[1..]).status();
    let released: redis::RedisResult<i64> = redis::Script::new(COMPARE_AND_DELETE)
        .key(key)
        .arg(&token)
        .invoke(&mut conn);
    if let Err(e) = released {
        eprintln!("bench helper --poll-lock: release failed: {e}");
    }
    let status = status.map_err(|e| format!("running {:?}: {e}", cmd[0]))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

fn tick_record(args: &[String]) -> Result<i32, String> {
    let [file] = args else {
        return Err("usage: --tick-record FILE".into());
    };
    let now = wall_ns();
    let tick = std::env::var("REDLOCK_TICK").unwrap_or_else(|_| "-".into());
    append(file, &format!("tick {now} {tick}\n")).map_err(|e| e.to_string())?;
    Ok(0)
}
