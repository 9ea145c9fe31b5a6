//! `redlock-run doctor`: a preflight of the Redis servers a key would use.
//!
//! The run path trusts the server's settings (one round trip per step, no
//! checks); this is where they are checked, once, by an operator. Each
//! check is `ok`, `warn`, `fail` or `unknown` (the server does not let us
//! look, as managed Redis with CONFIG renamed away), with what to do
//! about it. Exit 0 when nothing failed, 1 when something did, 69 when no
//! server could be reached.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::config::{Endpoint, Place};
use crate::exit;
use crate::lock::server::{self, Server};
use crate::lock::{Keys, Node, NodeError};
use crate::outcome::DoctorEnd;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Clock offsets: `schedule` refuses ticks when this host is ahead of
/// Redis by more than half an interval, and leases never use wall clocks.
const CLOCK_WARN: Duration = Duration::from_millis(250);
const CLOCK_FAIL: Duration = Duration::from_secs(5);
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Ok,
    Unknown,
    Warn,
    Fail,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Unknown => "unknown",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) level: Level,
    pub(crate) detail: String,
    /// What to do about it (empty when nothing is to be done).
    pub(crate) fix: String,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>, fix: &str) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
        fix: fix.to_string(),
    }
}

/// One server's results.
struct Report {
    name: String,
    reachable: bool,
    run_id: Option<String>,
    checks: Vec<Check>,
}

/// `redlock-run doctor`: print the checks; `code_of` is the verdict's
/// exit code, which the JSON carries.
pub(crate) async fn doctor(
    place: &Place,
    as_json: bool,
    code_of: impl FnOnce(DoctorEnd) -> i32,
) -> DoctorEnd {
    let keys = Keys::new(&place.key);
    let reports = futures_util::future::join_all(
        place
            .endpoints
            .iter()
            .map(|e| check_server(e.clone(), &keys)),
    )
    .await;
    let fleet = fleet_checks(&reports);
    let reachable = reports.iter().filter(|r| r.reachable).count();
    let worst = reports
        .iter()
        .flat_map(|r| &r.checks)
        .chain(&fleet)
        .map(|c| c.level)
        .max()
        .unwrap_or(Level::Ok);
    let verdict = if reachable == 0 {
        DoctorEnd::Unreachable
    } else if worst == Level::Fail {
        DoctorEnd::Failed
    } else {
        DoctorEnd::Clean
    };
    let code = code_of(verdict);
    let text = if as_json {
        format!("{}\n", to_json(&place.key, &reports, &fleet, code))
    } else {
        to_text(&place.key, &reports, &fleet)
    };
    crate::display::out(&text);
    verdict
}

async fn check_server(endpoint: Endpoint, keys: &Keys) -> Report {
    let mut node = Node::new(endpoint).any_version();
    let name = node.name().to_string();
    let mut checks = Vec::new();

    // Reachability and round trip: the best of three PINGs.
    let mut ping = redis::pipe();
    ping.cmd("PING");
    let mut best: Option<Duration> = None;
    for _ in 0..3 {
        let t = Instant::now();
        match node.query::<(String,)>(&ping, TIMEOUT).await {
            Ok(_) => best = Some(best.map_or(t.elapsed(), |b| b.min(t.elapsed()))),
            Err(e) => {
                let fix = match &e {
                    NodeError::Auth(_, why) => exit::AuthRefusal::find(why)
                        .map_or("check the user and password in the URL", |r| r.what_to_do()),
                    _ => "check the URL, that the server runs, and the network path to it",
                };
                checks.push(check("reachable", Level::Fail, e.to_string(), fix));
                return Report {
                    name,
                    reachable: false,
                    run_id: None,
                    checks,
                };
            }
        }
    }
    let rtt = best.unwrap_or_default();
    checks.push(check(
        "reachable",
        Level::Ok,
        format!("round trip {:.2} ms", rtt.as_secs_f64() * 1e3),
        "",
    ));

    let mut info_cmd = redis::pipe();
    info_cmd.cmd("INFO");
    let info = match node.query::<(String,)>(&info_cmd, TIMEOUT).await {
        Ok((text,)) => Some(server::parse_info(&text)),
        Err(_) => None,
    };
    let run_id = info.as_ref().and_then(|i| i.get("run_id").cloned());
    checks.push(version_check(&mut node, info.as_ref()).await);
    checks.push(lua_check(&mut node).await);
    checks.extend(acl_checks(&mut node, keys).await);
    checks.push(eviction_check(&mut node, info.as_ref()).await);
    checks.push(persistence_check(&mut node, info.as_ref()).await);
    checks.push(role_check(info.as_ref()));
    checks.push(cluster_check(info.as_ref()));
    checks.push(clock_check(&mut node).await);
    Report {
        name,
        reachable: true,
        run_id,
        checks,
    }
}

const NO_INFO: &str = "INFO is not allowed for this user";

/// The server as it names itself: from INFO (`server_name`,
/// `valkey_version`, `redis_version`), else from HELLO; below the oldest
/// supported is a failure (the run path refuses it, exit 69).
async fn version_check(node: &mut Node, info: Option<&HashMap<String, String>>) -> Check {
    let found = match info.and_then(Server::from_info) {
        Some(s) => Some(s),
        None => {
            let mut hello = redis::pipe();
            hello.cmd("HELLO");
            match node.query::<(redis::Value,)>(&hello, TIMEOUT).await {
                Ok((reply,)) => server::from_hello(&reply),
                Err(_) => None,
            }
        }
    };
    let Some(found) = found else {
        return check(
            "version",
            Level::Unknown,
            "neither INFO nor HELLO is allowed for this user",
            "",
        );
    };
    match found.refusal() {
        None => check("version", Level::Ok, found.to_string(), ""),
        Some(why) => check(
            "version",
            Level::Fail,
            why,
            "redlock-run refuses this server (exit 69): upgrade it",
        ),
    }
}

/// Whether an error is an ACL refusal (a plain command's NOPERM, or the
/// error a script gets for a command its user may not run).
fn is_denied(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    [
        "noperm",
        "no permissions",
        "can't run this",
        "can't publish",
    ]
    .iter()
    .any(|m| msg.contains(m))
}

async fn lua_check(node: &mut Node) -> Check {
    let mut eval = redis::pipe();
    eval.cmd("EVAL").arg("return 1").arg(0);
    match node.query::<(i64,)>(&eval, TIMEOUT).await {
        Ok((1,)) => check("lua", Level::Ok, "scripts run", ""),
        Ok(_) => check("lua", Level::Fail, "EVAL gave a wrong answer", ""),
        Err(e) if is_denied(&e.to_string()) => check(
            "lua",
            Level::Fail,
            "this user may not run EVAL",
            "grant +eval +evalsha +script|load to the user (ACL SETUSER)",
        ),
        Err(e) => check(
            "lua",
            Level::Fail,
            format!("scripting does not work: {e}"),
            "the tool needs Lua scripting (EVAL, EVALSHA)",
        ),
    }
}

/// Every command the tool sends: the plain ones tried directly (on
/// harmless arguments), the ones its scripts call tried from a script on
/// a scratch key in the lock's slot, and SUBSCRIBE on the lock's channel.
const SCRIPT_PROBE: &str = r#"
local k, z, l = KEYS[1], KEYS[2], KEYS[3]
local denied = {}
local function try(name, ...)
  local r = redis.pcall(name, ...)
  if type(r) == 'table' and r.err then
    local e = r.err
    if string.find(e, 'NOPERM') or string.find(e, 'permission') or string.find(e, "can't run")
      or string.find(e, "can't publish") then
      table.insert(denied, name)
    end
  end
end
try('SET', k, '1', 'PX', '10000')
try('GET', k)
try('PEXPIRE', k, '10000')
try('PTTL', k)
try('INCR', k)
try('ZADD', z, '1', 'x')
try('ZSCORE', z, 'x')
try('ZCARD', z)
try('ZRANGE', z, '0', '0', 'WITHSCORES')
try('ZRANGEBYSCORE', z, '-inf', '1')
try('ZREMRANGEBYSCORE', z, '-inf', '1')
try('ZREM', z, 'x')
try('ZPOPMIN', z)
try('TYPE', z)
try('EXISTS', z)
try('HSET', l, 'x', '1')
try('HGET', l, 'x')
try('HGETALL', l)
try('HDEL', l, 'x')
try('DEL', l)
try('LPUSH', l, 'x')
try('LSET', l, '0', 'x')
try('LTRIM', l, '0', '0')
try('LRANGE', l, '0', '0')
try('PUBLISH', ARGV[1], 'doctor')
try('TIME')
try('INFO', 'stats')
try('DEL', k, z, l)
return denied
"#;

/// The commands the lock needs (`acl`: fail when one is refused), then
/// the permissions that each turn one feature off (a warning each):
/// `pubsub` (PUBLISH, SUBSCRIBE on the lock's channels: waiters poll),
/// `scan` (`list`), `wait` (`--wait-replicas`).
async fn acl_checks(node: &mut Node, keys: &Keys) -> Vec<Check> {
    let denied = match denied_commands(node, keys).await {
        Ok(denied) => denied,
        Err(unknown) => return vec![unknown],
    };
    let (pubsub, denied): (Vec<String>, Vec<String>) = denied
        .into_iter()
        .partition(|d| d == "PUBLISH" || d == "SUBSCRIBE");
    let acl = acl_check(&denied);
    let pubsub = pubsub_check(&pubsub, keys);
    let mut scan = redis::pipe();
    scan.cmd("SCAN")
        .arg("0")
        .arg("MATCH")
        .arg(format!("{}*", keys.holder))
        .arg("COUNT")
        .arg("1");
    let scan = feature_check(
        node,
        "scan",
        &scan,
        "list finds the locks with SCAN",
        "SCAN is not allowed: `list` does not work (it exits 69)",
        "ACL SETUSER <user> +scan",
    )
    .await;
    let mut wait = redis::pipe();
    wait.cmd("WAIT").arg(0).arg(1);
    let wait = feature_check(
        node,
        "wait",
        &wait,
        "--wait-replicas can count acknowledging replicas with WAIT",
        "WAIT is not allowed: --wait-replicas is refused (exit 69)",
        "ACL SETUSER <user> +wait",
    )
    .await;
    vec![acl, pubsub, scan, wait]
}

/// The commands this user may not send on the lock's names: those sent
/// directly, those scripts call ([`SCRIPT_PROBE`]) and SUBSCRIBE. Err:
/// the `acl` check's verdict when they could not be checked.
async fn denied_commands(node: &mut Node, keys: &Keys) -> Result<Vec<String>, Check> {
    let scratch = format!("{}:doctor", keys.fence.trim_end_matches(":fence"));
    let mut denied: Vec<String> = Vec::new();
    let plain = |name: &str, pipe: redis::Pipeline| (name.to_string(), pipe);
    let mut evalsha = redis::pipe();
    evalsha
        .cmd("EVALSHA")
        .arg("0000000000000000000000000000000000000000")
        .arg(0);
    let mut load = redis::pipe();
    load.cmd("SCRIPT").arg("LOAD").arg("return 1");
    let mut get = redis::pipe();
    get.cmd("GET").arg(&keys.lock);
    let mut pttl = redis::pipe();
    pttl.cmd("PTTL").arg(&keys.lock);
    let probes = [
        plain("EVALSHA", evalsha),
        plain("SCRIPT LOAD", load),
        plain("GET", get),
        plain("PTTL", pttl),
    ];
    for (name, pipe) in probes {
        if let Err(e) = node.query::<redis::Value>(&pipe, TIMEOUT).await {
            if is_denied(&e.to_string()) {
                denied.push(name);
            }
        }
    }
    let mut probe = redis::pipe();
    probe
        .cmd("EVAL")
        .arg(SCRIPT_PROBE)
        .arg(3)
        .arg(format!("{scratch}:s"))
        .arg(format!("{scratch}:z"))
        .arg(format!("{scratch}:l"))
        .arg(format!("{scratch}:c"));
    match node.query::<(Vec<String>,)>(&probe, TIMEOUT).await {
        Ok((d,)) => denied.extend(d),
        Err(e) if is_denied(&e.to_string()) => {
            denied.push("EVAL (so the commands scripts call were not checked)".into());
        }
        Err(e) => {
            return Err(check(
                "acl",
                Level::Unknown,
                format!("could not check the commands scripts call: {e}"),
                "",
            ));
        }
    }
    match subscribe_probe(node, &keys.channel).await {
        Ok(()) => {}
        Err(e) if is_denied(&e) => denied.push("SUBSCRIBE".into()),
        Err(_) => {}
    }
    Ok(denied)
}

/// `acl`: fails naming the commands the lock needs that were `denied`.
fn acl_check(denied: &[String]) -> Check {
    if denied.is_empty() {
        check(
            "acl",
            Level::Ok,
            "every command the lock needs is allowed on the key's names",
            "",
        )
    } else {
        check(
            "acl",
            Level::Fail,
            format!("not allowed: {}", denied.join(", ")),
            "grant them to this user (ACL SETUSER), with the key patterns \
             KEY and {KEY}:redlock-run:* and the channels {KEY}:redlock-run:*",
        )
    }
}

/// `pubsub`: warns when PUBLISH or SUBSCRIBE was `denied` (waiters poll).
fn pubsub_check(denied: &[String], keys: &Keys) -> Check {
    let channels = format!("{}*", keys.channel.trim_end_matches("released"));
    if denied.is_empty() {
        check(
            "pubsub",
            Level::Ok,
            format!("waiters are woken by a message on {channels}"),
            "",
        )
    } else {
        check(
            "pubsub",
            Level::Warn,
            format!(
                "not allowed: {} on {channels}: waiters poll instead of being woken \
                 (a released lock is seen within a second, not within milliseconds)",
                denied.join(", ")
            ),
            &format!(
                "grant the channels and commands: ACL SETUSER <user> &{channels} +publish +subscribe"
            ),
        )
    }
}

/// One command that one feature needs: ok when it runs, a warning naming
/// the feature when the user may not send it, unknown on other errors.
async fn feature_check(
    node: &mut Node,
    name: &'static str,
    probe: &redis::Pipeline,
    ok: &str,
    off: &str,
    fix: &str,
) -> Check {
    match node.query::<redis::Value>(probe, TIMEOUT).await {
        Ok(_) => check(name, Level::Ok, ok, ""),
        Err(e) if is_denied(&e.to_string()) => check(name, Level::Warn, off, fix),
        Err(e) => check(name, Level::Unknown, format!("could not check: {e}"), ""),
    }
}

async fn subscribe_probe(node: &Node, channel: &str) -> Result<(), String> {
    let channels = [channel.to_string()];
    let fut = node.source().subscribe(&channels);
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(r) => r.map(drop).map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// CONFIG GET one parameter: `None` when CONFIG is not allowed or renamed.
async fn config_get(node: &mut Node, param: &str) -> Option<String> {
    let mut pipe = redis::pipe();
    pipe.cmd("CONFIG").arg("GET").arg(param);
    match node.query::<(Vec<String>,)>(&pipe, TIMEOUT).await {
        Ok((kv,)) => kv.get(1).cloned(),
        Err(_) => None,
    }
}

async fn eviction_check(node: &mut Node, info: Option<&HashMap<String, String>>) -> Check {
    let policy = match info.and_then(|i| i.get("maxmemory_policy")).cloned() {
        Some(p) => Some(p),
        None => config_get(node, "maxmemory-policy").await,
    };
    match policy.as_deref() {
        None => check(
            "maxmemory-policy",
            Level::Unknown,
            "neither INFO nor CONFIG shows it",
            "make sure the server never evicts keys (maxmemory-policy noeviction)",
        ),
        Some("noeviction") => check(
            "maxmemory-policy",
            Level::Ok,
            "noeviction: keys are never evicted",
            "",
        ),
        Some(p) => check(
            "maxmemory-policy",
            Level::Fail,
            format!(
                "{p}: the server may evict the fencing counter (tokens then rise \
                 only with its clock), \
                 schedule's tick claim (a tick runs twice) or the lock itself"
            ),
            "set maxmemory-policy noeviction (redis.conf, or CONFIG SET), or use a \
             server of its own for locks",
        ),
    }
}

async fn persistence_check(node: &mut Node, info: Option<&HashMap<String, String>>) -> Check {
    let aof = match info.and_then(|i| i.get("aof_enabled")) {
        Some(v) => Some(v == "1"),
        None => config_get(node, "appendonly").await.map(|v| v == "yes"),
    };
    match aof {
        None => check("persistence", Level::Unknown, NO_INFO, ""),
        Some(false) => check(
            "persistence",
            Level::Warn,
            "appendonly no: a restart loses held locks, the fencing counter and tick \
             claims (or brings back an older snapshot of them)",
            "set appendonly yes with appendfsync everysec or always",
        ),
        Some(true) => match config_get(node, "appendfsync").await.as_deref() {
            Some("always") => check(
                "persistence",
                Level::Ok,
                "appendonly yes, appendfsync always",
                "",
            ),
            Some("everysec") => check(
                "persistence",
                Level::Ok,
                "appendonly yes, appendfsync everysec (a crash can lose the last second)",
                "",
            ),
            Some(other) => check(
                "persistence",
                Level::Warn,
                format!("appendonly yes, appendfsync {other}: a crash can lose recent writes"),
                "set appendfsync everysec or always",
            ),
            None => check(
                "persistence",
                Level::Unknown,
                "appendonly yes; appendfsync unknown (CONFIG is not allowed)",
                "make sure appendfsync is everysec or always",
            ),
        },
    }
}

fn role_check(info: Option<&HashMap<String, String>>) -> Check {
    match info.and_then(|i| i.get("role")).map(String::as_str) {
        None => check("role", Level::Unknown, NO_INFO, ""),
        Some("master") => {
            let replicas = info
                .and_then(|i| i.get("connected_slaves"))
                .map_or("0", String::as_str);
            check(
                "role",
                Level::Ok,
                format!("primary with {replicas} replica(s)"),
                "",
            )
        }
        Some(role) => check(
            "role",
            Level::Fail,
            format!("a {role}: it refuses writes (READONLY), or takes them only to lose them"),
            "give the primary's URL",
        ),
    }
}

fn cluster_check(info: Option<&HashMap<String, String>>) -> Check {
    match info
        .and_then(|i| i.get("cluster_enabled"))
        .map(String::as_str)
    {
        None => check("cluster", Level::Unknown, NO_INFO, ""),
        Some("1") => check(
            "cluster",
            Level::Fail,
            "cluster mode: a plain URL reaches one node, which redirects keys it does not own",
            "point the tool at the node that owns the key's slot, or use a single-instance server",
        ),
        Some(_) => check("cluster", Level::Ok, "standalone", ""),
    }
}

async fn clock_check(node: &mut Node) -> Check {
    let mut time = redis::pipe();
    time.cmd("TIME");
    let sent = wall_us();
    let t0 = Instant::now();
    let reply = node.query::<(Vec<String>,)>(&time, TIMEOUT).await;
    let rtt = t0.elapsed();
    let Ok((parts,)) = reply else {
        return check(
            "clock",
            Level::Unknown,
            "TIME is not allowed for this user",
            "",
        );
    };
    let secs: i64 = parts.first().and_then(|s| s.parse().ok()).unwrap_or(0);
    let micros: i64 = parts.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let server_us = secs * 1_000_000 + micros;
    // This host's clock at the moment the server read its own: halfway.
    let local_us = sent + (rtt.as_micros() as i64) / 2;
    let offset_us = local_us - server_us;
    let off = Duration::from_micros(offset_us.unsigned_abs());
    let detail = format!(
        "this host's clock is {} Redis's by {:.1} ms (± {:.1} ms)",
        if offset_us >= 0 { "ahead of" } else { "behind" },
        off.as_secs_f64() * 1e3,
        rtt.as_secs_f64() * 1e3 / 2.0
    );
    let fix = "synchronise the clocks (NTP): schedule refuses to claim ticks while this \
               host is ahead of Redis by more than half an interval";
    if off > CLOCK_FAIL {
        check("clock", Level::Fail, detail, fix)
    } else if off > CLOCK_WARN {
        check("clock", Level::Warn, detail, fix)
    } else {
        check("clock", Level::Ok, detail, "")
    }
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Checks of the set of masters as a whole (Redlock mode).
fn fleet_checks(reports: &[Report]) -> Vec<Check> {
    let n = reports.len();
    if n < 2 {
        return Vec::new();
    }
    let mut checks = Vec::new();
    let quorum = n / 2 + 1;
    if n % 2 == 0 {
        checks.push(check(
            "masters",
            Level::Warn,
            format!("{n} masters tolerate no more failures than {}", n - 1),
            "use an odd number of masters",
        ));
    } else {
        checks.push(check(
            "masters",
            Level::Ok,
            format!("{n} masters, quorum {quorum}: {} may fail", n - quorum),
            "",
        ));
    }
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut same = Vec::new();
    for r in reports {
        if let Some(id) = &r.run_id {
            if let Some(first) = seen.insert(id, &r.name) {
                same.push(format!("{first} and {}", r.name));
            }
        }
    }
    let unknown: HashSet<&str> = reports
        .iter()
        .filter(|r| r.reachable && r.run_id.is_none())
        .map(|r| r.name.as_str())
        .collect();
    if !same.is_empty() {
        checks.push(check(
            "independent",
            Level::Fail,
            format!("the same server (same run_id): {}", same.join("; ")),
            "Redlock needs independent masters: list each server once",
        ));
    } else if !unknown.is_empty() {
        checks.push(check(
            "independent",
            Level::Unknown,
            "INFO is not allowed on some masters: cannot tell whether two URLs are one server",
            "",
        ));
    } else {
        checks.push(check(
            "independent",
            Level::Ok,
            "every master is a different server",
            "",
        ));
    }
    let reachable = reports.iter().filter(|r| r.reachable).count();
    if reachable < quorum {
        checks.push(check(
            "quorum",
            Level::Fail,
            format!("{reachable} of {n} masters reachable, {quorum} needed"),
            "bring the masters back, or fix the URLs",
        ));
    } else {
        checks.push(check(
            "quorum",
            Level::Ok,
            format!("{reachable} of {n} masters reachable"),
            "",
        ));
    }
    checks
}

/// One check as a text line. Details and fixes may name the key (its
/// channels, its names): escaped here, once, like every other output.
fn check_line(c: &Check) -> String {
    let esc = crate::display::escape_controls;
    let mut line = format!(
        "  {:<8} {:<17} {}",
        c.level.as_str(),
        c.name,
        esc(&c.detail)
    );
    if !c.fix.is_empty() && c.level != Level::Ok {
        line.push_str(" -> ");
        line.push_str(&esc(&c.fix));
    }
    line.push('\n');
    line
}

fn to_text(key: &str, reports: &[Report], fleet: &[Check]) -> String {
    let mut s = format!(
        "redlock-run doctor: key \"{}\", {} server(s)\n",
        crate::display::escape_controls(key),
        reports.len()
    );
    for r in reports {
        s.push_str(&format!("{}\n", r.name));
        for c in &r.checks {
            s.push_str(&check_line(c));
        }
    }
    if !fleet.is_empty() {
        s.push_str("across all masters\n");
        for c in fleet {
            s.push_str(&check_line(c));
        }
    }
    let all: Vec<&Check> = reports
        .iter()
        .flat_map(|r| &r.checks)
        .chain(fleet)
        .collect();
    let count = |l: Level| all.iter().filter(|c| c.level == l).count();
    s.push_str(&format!(
        "{} failed, {} warned, {} unknown, {} ok\n",
        count(Level::Fail),
        count(Level::Warn),
        count(Level::Unknown),
        count(Level::Ok)
    ));
    s
}

fn check_json(c: &Check) -> Value {
    json!({
        "check": c.name,
        "status": c.level.as_str(),
        "detail": c.detail,
        "fix": if c.fix.is_empty() || c.level == Level::Ok { Value::Null } else { json!(c.fix) },
    })
}

fn to_json(key: &str, reports: &[Report], fleet: &[Check], code: i32) -> Value {
    json!({
        "key": key,
        "ok": code == 0,
        "exit_code": code,
        "servers": reports.iter().map(|r| json!({
            "url": r.name,
            "reachable": r.reachable,
            "checks": r.checks.iter().map(check_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "masters": fleet.iter().map(check_json).collect::<Vec<_>>(),
    })
}
