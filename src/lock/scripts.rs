//! The Lua scripts, one file each in `lua/`, and one typed builder per
//! script for its KEYS and ARGV. Each script runs atomically on one
//! master, so no step of the lock protocol is ever a GET-then-SET race.
//! Every file opens with a header naming its KEYS and ARGV by meaning and
//! its replies, and binds them to named locals on its first lines; the
//! helpers they share are in `lua/prelude.lua`, put in front of each
//! script when it is loaded. A unit test below holds every builder to its
//! script's header. See
//! <https://redis.io/docs/latest/develop/use/patterns/distributed-locks/>.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

use redis::Script;

use super::{HISTORY_LEN, Keys, Mode, QUEUE_TTL_MS};

/// The helpers every script shares (reads no KEYS or ARGV).
const PRELUDE: &str = include_str!("lua/prelude.lua");

/// One script: its file's name and text, loaded (prelude first) on first
/// use. A file opens with its flags (`#!lua flags=allow-oom`: Redis 7
/// and Valkey refuse a script without `allow-oom` before it runs when out
/// of memory, and let one with it write); Redis 6.2 knows no flags, and
/// is sent the script without that line.
pub struct Lua {
    pub name: &'static str,
    pub(crate) body: &'static str,
    flagged: OnceLock<Script>,
    plain: OnceLock<Script>,
}

impl Lua {
    const fn new(name: &'static str, body: &'static str) -> Self {
        Lua {
            name,
            body,
            flagged: OnceLock::new(),
            plain: OnceLock::new(),
        }
    }

    /// The file's first line (`#!lua ...`) and the rest.
    fn split(&self) -> (&'static str, &'static str) {
        self.body
            .split_once('\n')
            .filter(|(first, _)| first.starts_with("#!lua"))
            .unwrap_or(("", self.body))
    }

    /// The file without its flags line: the header comes first.
    #[cfg(test)]
    pub(crate) fn text(&self) -> &'static str {
        self.split().1
    }

    /// The script as sent: with its flags (Redis 7, Valkey) or without
    /// (`flags` false: Redis 6.2), then the prelude, then the file.
    pub fn script(&self, flags: bool) -> &Script {
        let flagged = flags && !self.split().0.is_empty();
        let cell = if flagged { &self.flagged } else { &self.plain };
        cell.get_or_init(|| Script::new(&self.source(flagged)))
    }

    /// The text [`Lua::script`] sends (and hashes for EVALSHA).
    pub(crate) fn source(&self, flags: bool) -> String {
        let (shebang, rest) = self.split();
        if flags && !shebang.is_empty() {
            [shebang, "\n", PRELUDE, rest].concat()
        } else {
            [PRELUDE, rest].concat()
        }
    }
}

/// Whether a server refused a script for its flags line: a server
/// without script flags (Redis 6.2) compiles `#!lua` as Lua.
pub(crate) fn refused_flags(message: &str) -> bool {
    message.contains("Error compiling script") && message.contains("near '#'")
}

pub(crate) static ACQUIRE: Lua = Lua::new("acquire", include_str!("lua/acquire.lua"));
pub(crate) static ACQUIRE_N: Lua = Lua::new("acquire_n", include_str!("lua/acquire_n.lua"));
pub(crate) static EXTEND: Lua = Lua::new("extend", include_str!("lua/extend.lua"));
pub(crate) static EXTEND_N: Lua = Lua::new("extend_n", include_str!("lua/extend_n.lua"));
pub(crate) static RECORD: Lua = Lua::new("record", include_str!("lua/record.lua"));
pub(crate) static RELEASE: Lua = Lua::new("release", include_str!("lua/release.lua"));
pub(crate) static RELEASE_N: Lua = Lua::new("release_n", include_str!("lua/release_n.lua"));
pub(crate) static UNDO: Lua = Lua::new("undo", include_str!("lua/undo.lua"));
pub(crate) static UNDO_N: Lua = Lua::new("undo_n", include_str!("lua/undo_n.lua"));
pub(crate) static COMMIT: Lua = Lua::new("commit", include_str!("lua/commit.lua"));
pub(crate) static LEAVE: Lua = Lua::new("leave", include_str!("lua/leave.lua"));
pub(crate) static LEAVE_N: Lua = Lua::new("leave_n", include_str!("lua/leave_n.lua"));
pub(crate) static FORCE_RELEASE: Lua =
    Lua::new("force_release", include_str!("lua/force_release.lua"));
pub(crate) static FORGET: Lua = Lua::new("forget", include_str!("lua/forget.lua"));
pub(crate) static PROBE: Lua = Lua::new("probe", include_str!("lua/probe.lua"));

/// Every script (for the tests that read them).
#[cfg(test)]
pub(crate) static ALL: [&Lua; 15] = [
    &ACQUIRE,
    &ACQUIRE_N,
    &EXTEND,
    &EXTEND_N,
    &RECORD,
    &RELEASE,
    &RELEASE_N,
    &UNDO,
    &UNDO_N,
    &COMMIT,
    &LEAVE,
    &LEAVE_N,
    &FORCE_RELEASE,
    &FORGET,
    &PROBE,
];

/// One call of a script: its KEYS and ARGV, each under the name its
/// file's header gives it.
pub struct Call<'a> {
    pub lua: &'static Lua,
    keys: Vec<(&'static str, &'a str)>,
    args: Vec<(&'static str, Cow<'a, str>)>,
}

impl<'a> Call<'a> {
    fn new(lua: &'static Lua) -> Self {
        Call {
            lua,
            keys: Vec::with_capacity(7),
            args: Vec::with_capacity(11),
        }
    }

    fn key(mut self, name: &'static str, value: &'a str) -> Self {
        self.keys.push((name, value));
        self
    }

    fn arg(mut self, name: &'static str, value: impl Into<Cow<'a, str>>) -> Self {
        self.args.push((name, value.into()));
        self
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(_, v)| *v)
    }

    pub fn args(&self) -> impl Iterator<Item = &str> {
        self.args.iter().map(|(_, v)| v.as_ref())
    }

    /// The call as one `EVAL` with the script's whole text, without its
    /// flags line (every server runs that): for scripts sent once in a
    /// while, or whose reply may go unheard (no NOSCRIPT round trip).
    pub(crate) fn eval_cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(self.lua.source(false)).arg(self.keys.len());
        for k in self.keys() {
            cmd.arg(k);
        }
        for a in self.args() {
            cmd.arg(a);
        }
        cmd
    }

    /// KEYS[1]: the key the call is about (a `WAIT` after it names it).
    pub(crate) fn first_key(&self) -> &str {
        self.keys.first().map_or("", |(_, v)| v)
    }
}

/// The one-holder script, or its `--limit N` (N > 1) sibling.
fn pick(limit: u32, one: &'static Lua, shared: &'static Lua) -> &'static Lua {
    if limit > 1 { shared } else { one }
}

/// What `acquire.lua` / `acquire_n.lua` are asked.
pub struct Acquire<'a> {
    pub token: &'a str,
    pub ttl: Duration,
    pub holder_json: &'a str,
    pub mode: Mode<'a>,
    /// Quorum mode: a tick claim stays pending until `commit.lua`.
    pub quorum: bool,
    pub limit: u32,
}

/// One attempt to take the lock (`acquire.lua`, `acquire_n.lua`).
pub fn acquire<'a>(keys: &'a Keys, a: &Acquire<'a>) -> Call<'a> {
    let shared = a.limit > 1;
    let (mode, aux, mode_arg, waiter) = match a.mode {
        Mode::Once => ("once", &keys.tick, String::new(), ""),
        Mode::Tick { tick, .. } => ("tick", &keys.tick, tick.to_string(), ""),
        Mode::Wait { score, waiter } => ("wait", &keys.waiters, score.to_string(), waiter),
    };
    let (bound, host_ms) = match a.mode {
        Mode::Tick { bound_ms, .. } => (bound_ms.to_string(), wall_ms().to_string()),
        _ => (String::new(), String::new()),
    };
    let call = Call::new(pick(a.limit, &ACQUIRE, &ACQUIRE_N))
        .key("lock_key", &keys.lock)
        .key("fence_key", &keys.fence);
    let call = if shared {
        call.key("holders_key", &keys.holders)
    } else {
        call.key("holder_key", &keys.holder)
    };
    let call = call
        .key("aux_key", aux)
        .key("limit_key", &keys.limit)
        .key("woken_key", &keys.woken)
        .arg("token", a.token)
        .arg("ttl_ms", a.ttl.as_millis().to_string())
        .arg("holder_json", a.holder_json)
        .arg("mode", mode)
        .arg("mode_arg", mode_arg)
        .arg("queue_ttl_ms", QUEUE_TTL_MS)
        .arg("waiter_id", waiter)
        .arg("bound_ms", bound)
        .arg("claim_state", if a.quorum { "p" } else { "c" })
        .arg("host_ms", host_ms);
    if shared {
        call.arg("limit", a.limit.to_string())
    } else {
        call
    }
}

/// Extend our lease to `ttl` from now (`extend.lua`, `extend_n.lua`),
/// with `run` (a finished run's JSON) recording it in the same step
/// (`--min-hold`). A renewal names only the keys it touches: while a
/// Cluster slot migrates, a script naming a key the old node no longer
/// (or not yet) has is refused (TRYAGAIN), and a renewal has all of its
/// own, not the history.
pub fn extend<'a>(
    keys: &'a Keys,
    limit: u32,
    token: &'a str,
    ttl: Duration,
    run: Option<&'a str>,
) -> Call<'a> {
    let call = if limit > 1 {
        Call::new(&EXTEND_N)
            .key("lock_key", &keys.lock)
            .key("holders_key", &keys.holders)
            .key("limit_key", &keys.limit)
    } else {
        Call::new(&EXTEND)
            .key("lock_key", &keys.lock)
            .key("holder_key", &keys.holder)
    };
    let call = match run {
        Some(_) => call.key("history_key", &keys.history),
        None => call,
    };
    let call = call
        .arg("token", token)
        .arg("ttl_ms", ttl.as_millis().to_string());
    match run {
        Some(entry) => call
            .arg("entry", entry)
            .arg("history_len", HISTORY_LEN.to_string()),
        None => call,
    }
}

/// Record a run that did not end with our own release (`record.lua`).
pub fn record<'a>(keys: &'a Keys, entry: &'a str, fencing: u64) -> Call<'a> {
    Call::new(&RECORD)
        .key("history_key", &keys.history)
        .arg("entry", entry)
        .arg("history_len", HISTORY_LEN.to_string())
        .arg("fencing_token", fencing.to_string())
}

/// Give the lock back, recording the finished run (`entry`, JSON; empty
/// for none) in the same step (`release.lua`, `release_n.lua`).
pub fn release<'a>(
    keys: &'a Keys,
    limit: u32,
    token: &'a str,
    entry: &'a str,
    publish_cmd: &'static str,
) -> Call<'a> {
    Call::new(pick(limit, &RELEASE, &RELEASE_N))
        .key("lock_key", &keys.lock)
        .key(description_name(limit), keys.description(limit > 1))
        .key("waiters_key", &keys.waiters)
        .key("released_key", &keys.released)
        .key("history_key", &keys.history)
        .key("limit_key", &keys.limit)
        .key("woken_key", &keys.woken)
        .arg("token", token)
        .arg("channel", keys.channel.as_str())
        .arg("wake_prefix", keys.wake_prefix.as_str())
        .arg("entry", entry)
        .arg("history_len", HISTORY_LEN.to_string())
        .arg("publish_cmd", publish_cmd)
        .arg("queue_ttl_ms", QUEUE_TTL_MS)
}

/// A waiter giving up (`leave.lua`, `leave_n.lua`).
pub fn leave<'a>(
    keys: &'a Keys,
    limit: u32,
    token: &'a str,
    waiter: &'a str,
    publish_cmd: &'static str,
) -> Call<'a> {
    let call = Call::new(pick(limit, &LEAVE, &LEAVE_N))
        .key("lock_key", &keys.lock)
        .key(description_name(limit), keys.description(limit > 1))
        .key("waiters_key", &keys.waiters)
        .key("limit_key", &keys.limit)
        .key("woken_key", &keys.woken)
        .arg("token", token)
        .arg("channel", keys.channel.as_str())
        .arg("wake_prefix", keys.wake_prefix.as_str())
        .arg("waiter_id", waiter)
        .arg("publish_cmd", publish_cmd)
        .arg("queue_ttl_ms", QUEUE_TTL_MS);
    if limit > 1 {
        call.arg("limit", limit.to_string())
    } else {
        call
    }
}

/// Undo a failed attempt (`undo.lua`, `undo_n.lua`); with `--limit`, a
/// waiter's attempt (`waiter`: its queue score and id) goes back in the
/// queue. A one-holder undo names the keys it touches only (a Cluster
/// slot migration refuses a script naming a key that is not there).
pub fn undo<'a>(
    keys: &'a Keys,
    limit: u32,
    token: &'a str,
    waiter: Option<(u64, &'a str)>,
) -> Call<'a> {
    if limit > 1 {
        Call::new(&UNDO_N)
            .key("lock_key", &keys.lock)
            .key("holders_key", &keys.holders)
            .key("claim_key", &keys.tick)
            .key("waiters_key", &keys.waiters)
            .key("limit_key", &keys.limit)
            .key("woken_key", &keys.woken)
            .arg("token", token)
            .arg("waiter_id", waiter.map_or("", |(_, w)| w))
            .arg(
                "score",
                waiter.map_or(String::new(), |(s, _)| s.to_string()),
            )
            .arg("queue_ttl_ms", QUEUE_TTL_MS)
    } else {
        Call::new(&UNDO)
            .key("lock_key", &keys.lock)
            .key("holder_key", &keys.holder)
            .key("claim_key", &keys.tick)
            .arg("token", token)
    }
}

/// The second round of a quorum acquisition (`commit.lua`).
pub fn commit<'a>(keys: &'a Keys, fencing: u64, token: &'a str) -> Call<'a> {
    Call::new(&COMMIT)
        .key("fence_key", &keys.fence)
        .key("claim_key", &keys.tick)
        .arg("fencing_token", fencing.to_string())
        .arg("token", token)
}

/// Break glass (`force_release.lua`).
pub fn force_release<'a>(keys: &'a Keys, publish_cmd: &'static str) -> Call<'a> {
    Call::new(&FORCE_RELEASE)
        .key("lock_key", &keys.lock)
        .key("holder_key", &keys.holder)
        .key("claim_key", &keys.tick)
        .key("holders_key", &keys.holders)
        .key("limit_key", &keys.limit)
        .arg("channel", keys.channel.as_str())
        .arg("publish_cmd", publish_cmd)
}

/// Retire a key (`forget.lua`, `release --forget`).
pub(crate) fn forget(keys: &Keys) -> Call<'_> {
    Call::new(&FORGET)
        .key("lock_key", &keys.lock)
        .key("holder_key", &keys.holder)
        .key("holders_key", &keys.holders)
        .key("waiters_key", &keys.waiters)
        .key("woken_key", &keys.woken)
        .key("limit_key", &keys.limit)
        .key("claim_key", &keys.tick)
        .key("fence_key", &keys.fence)
        .key("history_key", &keys.history)
        .key("released_key", &keys.released)
}

/// `schedule`'s look at start (`probe.lua`: writes nothing).
pub(crate) fn probe(keys: &Keys) -> Call<'_> {
    Call::new(&PROBE)
        .key("lock_key", &keys.lock)
        .key("fence_key", &keys.fence)
        .key("claim_key", &keys.tick)
}

/// The header's name of the holder's description key.
fn description_name(limit: u32) -> &'static str {
    if limit > 1 {
        "holders_key"
    } else {
        "holder_key"
    }
}

/// This host's wall clock, ms since the epoch.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One KEYS or ARGV entry of a script's header.
    #[derive(Debug, PartialEq)]
    struct Entry {
        name: String,
        optional: bool,
    }

    /// The KEYS and ARGV a header names, in order (`-- KEYS[n] name:` or
    /// `-- KEYS[n] name (optional):`), checked to be numbered 1, 2, ...
    fn header(lua: &Lua, of: &str) -> Vec<Entry> {
        let prefix = format!("-- {of}[");
        let mut out = Vec::new();
        for line in lua.text().lines() {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let (n, rest) = rest.split_once("] ").expect("-- KEYS[n] name: ...");
            let n: usize = n.parse().expect("a number");
            assert_eq!(n, out.len() + 1, "{}: {of}[{n}] out of order", lua.name);
            let (name, rest) = rest.split_once(':').expect("name: meaning");
            let (name, optional) = match name.strip_suffix(" (optional)") {
                Some(name) => (name, true),
                None => (name, false),
            };
            assert!(
                !rest.trim().is_empty(),
                "{}: {of}[{n}] {name} says nothing",
                lua.name
            );
            out.push(Entry {
                name: name.to_string(),
                optional,
            });
        }
        // Optional entries come last: a call sends a prefix.
        let first = out.iter().position(|e| e.optional).unwrap_or(out.len());
        assert!(
            out[first..].iter().all(|e| e.optional),
            "{}: {of}: optional entries must come last",
            lua.name
        );
        out
    }

    /// Every `KEYS[n]` / `ARGV[n]` the code (not the comments) of `text`
    /// reads, with the local it is bound to (`local name = KEYS[n]`), or
    /// None where it is read elsewhere.
    fn reads(text: &str, of: &str) -> Vec<(usize, Option<String>)> {
        let mut out = Vec::new();
        for line in text.lines() {
            let code = line.split("--").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find(&format!("{of}[")) {
                let after = &rest[at + of.len() + 1..];
                let (n, tail) = after.split_once(']').expect("closing ]");
                let n: usize = n.trim().parse().expect("a literal index");
                let bound = code
                    .trim()
                    .strip_prefix("local ")
                    .and_then(|s| s.strip_suffix(&format!("= {of}[{n}]")))
                    .map(|s| s.trim().to_string());
                out.push((n, bound));
                rest = tail;
            }
        }
        out
    }

    /// Each script reads exactly the KEYS and ARGV its header names, each
    /// bound to a local of the header's name before anything else runs;
    /// the prelude reads none.
    #[test]
    fn scripts_read_what_their_headers_name() {
        assert!(reads(PRELUDE, "KEYS").is_empty() && reads(PRELUDE, "ARGV").is_empty());
        for lua in ALL {
            for of in ["KEYS", "ARGV"] {
                let names = header(lua, of);
                let read = reads(lua.body, of);
                assert_eq!(read, reads(lua.text(), of));
                let want: Vec<(usize, Option<String>)> = names
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i + 1, Some(e.name.clone())))
                    .collect();
                assert_eq!(read, want, "{}: {of} read vs header", lua.name);
            }
            // The bindings are the first lines of code.
            let code: Vec<&str> = lua
                .text()
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
                .collect();
            let n = header(lua, "KEYS").len() + header(lua, "ARGV").len();
            assert!(
                code[..n]
                    .iter()
                    .all(|l| l.contains("= KEYS[") || l.contains("= ARGV[")),
                "{}: the first {n} lines of code bind KEYS and ARGV",
                lua.name
            );
        }
    }

    /// Every call the lock makes, built with sample values.
    fn every_call(keys: &Keys) -> Vec<Call<'_>> {
        let mut calls = Vec::new();
        for limit in [1, 3] {
            for quorum in [false, true] {
                for mode in [
                    Mode::Once,
                    Mode::Tick {
                        tick: 60_000,
                        bound_ms: 5_000,
                    },
                    Mode::Wait {
                        score: 7,
                        waiter: "w",
                    },
                ] {
                    let a = Acquire {
                        token: "t",
                        ttl: Duration::from_secs(30),
                        holder_json: "{}",
                        mode,
                        quorum,
                        limit,
                    };
                    calls.push(acquire(keys, &a));
                }
            }
            let ttl = Duration::from_secs(1);
            calls.push(extend(keys, limit, "t", ttl, None));
            calls.push(extend(keys, limit, "t", ttl, Some("{}")));
            calls.push(release(keys, limit, "t", "{}", "PUBLISH"));
            calls.push(leave(keys, limit, "t", "w", "SPUBLISH"));
            calls.push(undo(keys, limit, "t", None));
            calls.push(undo(keys, limit, "t", Some((7, "w"))));
        }
        calls.push(record(keys, "{}", 9));
        calls.push(commit(keys, 9, "t"));
        calls.push(force_release(keys, "PUBLISH"));
        calls.push(forget(keys));
        calls.push(probe(keys));
        calls
    }

    /// Each builder sends what its script's header names, in order: all
    /// of it, or all but optional entries at the end; and every script
    /// has a builder.
    #[test]
    fn builders_send_what_the_scripts_read() {
        let keys = Keys::new("k");
        let calls = every_call(&keys);
        for call in &calls {
            for (of, sent) in [
                (
                    "KEYS",
                    call.keys.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                ),
                ("ARGV", call.args.iter().map(|(n, _)| *n).collect()),
            ] {
                let names = header(call.lua, of);
                let want: Vec<&str> = names.iter().map(|e| e.name.as_str()).collect();
                assert!(
                    sent.len() <= want.len() && sent == want[..sent.len()],
                    "{}: {of} sent {sent:?}, the header names {want:?}",
                    call.lua.name
                );
                assert!(
                    names[sent.len()..].iter().all(|e| e.optional),
                    "{}: {of} sent {sent:?} leaves out required entries of {want:?}",
                    call.lua.name
                );
            }
        }
        for lua in ALL {
            assert!(
                calls.iter().any(|c| std::ptr::eq(c.lua, lua)),
                "{} has no builder",
                lua.name
            );
        }
    }

    /// Each file opens with its flags line, then a header that names it;
    /// the script is sent with the prelude after the flags (which must be
    /// the first line), or without flags for a server that has none.
    #[test]
    fn scripts_load_with_their_flags_then_the_prelude() {
        for lua in ALL {
            assert!(lua.body.starts_with("#!lua"), "{}", lua.name);
            assert!(
                lua.text().starts_with(&format!("-- {}.lua: ", lua.name)),
                "{}",
                lua.name
            );
            let (flagged, plain) = (lua.script(true), lua.script(false));
            assert_ne!(flagged.get_hash(), plain.get_hash());
        }
        // Which scripts may write out of memory: those that free the lock
        // or keep a lease, never one that takes a lock.
        for lua in ALL {
            let oom = lua.body.lines().next().unwrap().contains("allow-oom");
            let takes = ["acquire", "acquire_n", "commit", "record"].contains(&lua.name);
            assert_eq!(oom, !takes, "{}", lua.name);
        }
        assert!(refused_flags(
            "ERR Error compiling script (new function): user_script:1: unexpected symbol near '#'"
        ));
    }
}
