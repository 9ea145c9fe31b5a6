//! Small looks at processes, servers and clocks that several test files
//! need: one copy here.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{RedisServer, Rr};

/// The state letter of a `/proc/PID/stat` line ('T' stopped, 'Z' zombie, ...).
pub fn stat_state(stat: &str) -> Option<char> {
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// The state letter of process `pid` (None: gone).
pub fn proc_state(pid: i32) -> Option<char> {
    stat_state(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Nanoseconds since the epoch, as `date +%s%N` prints them.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// The nearest-rank percentile `q` (0 < q <= 1) of sorted values.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> T {
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// A number from `INFO section` (None: no such field).
pub fn info_i64(c: &mut redis::Connection, section: &str, field: &str) -> Option<i64> {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
}

impl RedisServer {
    /// A number from `INFO section`; the test fails if there is none.
    pub fn info_i64(&self, section: &str, field: &str) -> i64 {
        info_i64(&mut self.conn(), section, field)
            .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
    }
}

/// A server with the user `job` (password `pw`) that has every command
/// and key but no channel (`resetchannels`, explicit: Redis 6.2's default
/// is `allchannels`), and that user's URL.
pub fn server_without_channels() -> (RedisServer, String) {
    let server = RedisServer::start();
    let _: () = server.query(&[
        "ACL",
        "SETUSER",
        "job",
        "on",
        ">pw",
        "~*",
        "resetchannels",
        "+@all",
    ]);
    let url = format!("redis://job:pw@127.0.0.1:{}", server.port);
    (server, url)
}

/// Redis's clock, ms since the epoch (`TIME`).
pub fn redis_now_ms(server: &RedisServer) -> u64 {
    let (s, us): (u64, u64) = server.query(&["TIME"]);
    s * 1000 + us / 1000
}

/// `status --key K` (text) on one server: its exit code and stdout.
pub fn status_text(server: &RedisServer, k: &str) -> (i32, String) {
    let o = Rr::on(server).args(["status", "--key", k]).run();
    let code = o.status.code().expect("status exited");
    (code, String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `status --key K --json` on one server: its exit code and the JSON.
pub fn status_json(server: &RedisServer, k: &str) -> (i32, Value) {
    status_json_at(&[server.url()], k)
}

/// `status --key K --json` over `urls` (a quorum): exit code and JSON.
pub fn status_json_at(urls: &[String], k: &str) -> (i32, Value) {
    let o = Rr::urls(urls).args(["status", "--key", k, "--json"]).run();
    let code = o.status.code().expect("status exited");
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {out:?} {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (code, v)
}
