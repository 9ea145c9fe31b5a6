//! Acquire, renew and release one named lock on one Redis master or on a
//! Redlock quorum of independent masters, behind one type: with a single
//! master the quorum is simply 1 of 1. Algorithm:
//! <https://redis.io/docs/latest/develop/use/patterns/distributed-locks/>.
//!
//! Every step is one atomic Lua script per master, every request has a
//! deadline, and lease validity is measured on CLOCK_BOOTTIME from just
//! before the request was sent, less the allowance for clock drift.

mod acquire;
mod fanout;
mod forget;
mod keeper;
mod masters;
mod node;
mod probe;
mod release;
mod renew;
mod scan;
pub mod scripts;
pub(crate) mod server;
pub(crate) mod slot;
mod status;
mod topology;
mod wait;

use std::time::Duration;

use crate::clock::BootInstant;
use crate::config::{Endpoint, Lease};
use crate::display::escape_controls;
pub(crate) use forget::Forgot;
pub(crate) use keeper::{Keeper, LeaseState};
pub(crate) use node::{Node, NodeError};
pub(crate) use probe::Probe;
pub use release::Count;
pub(crate) use scan::Found;
pub(crate) use status::{FenceKind, MasterState, Snapshot, Status};
pub(crate) use wait::{WaitObserver, WaitOutcome};

/// The Redis names that belong to one lock. The lock itself is exactly
/// KEY (interop with other clients); every auxiliary name carries a hash
/// tag that puts it in KEY's cluster slot ([`slot::tag_for`]), so that
/// each Lua script touches one slot only.
#[derive(Debug, Clone)]
pub struct Keys {
    pub lock: String,
    pub fence: String,
    /// schedule: the last tick (ms since the epoch) that ran.
    pub tick: String,
    /// The waiters' queue (sorted set of tokens by arrival).
    pub waiters: String,
    /// A waiter is woken on this prefix followed by its token.
    pub wake_prefix: String,
    pub holder: String,
    pub channel: String,
    /// The last few tokens released (a retried release recognises its own).
    pub released: String,
    /// Run history: the last runs, newest first (JSON entries).
    pub history: String,
    /// `--limit N` (N > 1): the holders' descriptions (hash by token).
    pub holders: String,
    /// The N of `--limit` that the key's holders and waiters use.
    pub limit: String,
    /// `--limit N` (N > 1): waiters woken and not yet back (sorted set by
    /// wake-up time): they keep the stored N alive.
    pub woken: String,
}

impl Keys {
    pub fn new(key: &str) -> Self {
        Keys {
            lock: key.to_string(),
            fence: Keys::aux(key, "fence"),
            tick: Keys::aux(key, "tick"),
            waiters: Keys::aux(key, "waiters"),
            wake_prefix: format!("{}:", Keys::aux(key, "wake")),
            holder: Keys::aux(key, "holder"),
            channel: Keys::aux(key, "released"),
            released: Keys::aux(key, "released-tokens"),
            history: Keys::aux(key, "history"),
            holders: Keys::aux(key, "holders"),
            limit: Keys::aux(key, "limit"),
            woken: Keys::aux(key, "woken"),
        }
    }

    /// Where a holder's description lives: one string, or with `--limit`
    /// (`shared`) a hash by token.
    pub(crate) fn description(&self, shared: bool) -> &str {
        if shared { &self.holders } else { &self.holder }
    }

    /// The name of auxiliary `kind` (a word without `:`) of lock `key`:
    /// `{KEY}:redlock-run:KIND` when KEY holds no `}` (as ever), else
    /// `{TAG}:KEY:redlock-run:KIND`, with KEY's own hash tag or one that
    /// hashes like KEY. Every name ends in `:redlock-run:KIND`, and
    /// distinct keys never share a name: KIND is what follows the last
    /// `:`, and what precedes `:redlock-run:KIND` is `{KEY}` with one `}`
    /// or `{TAG}:KEY` with at least two.
    pub(crate) fn aux(key: &str, kind: &str) -> String {
        let tag = slot::tag_for(key);
        if tag == key {
            format!("{{{key}}}:redlock-run:{kind}")
        } else {
            format!("{{{tag}}}:{key}:redlock-run:{kind}")
        }
    }
}

/// A lock we hold.
#[derive(Debug, Clone)]
pub struct Grant {
    pub(crate) token: String,
    pub fencing: u64,
    pub(crate) acquired_at: BootInstant,
    /// Until when the lease is certainly ours (drift already subtracted).
    pub(crate) valid_until: BootInstant,
}

/// What a redlock-run holder stores about itself next to the lock (the
/// holder's description, JSON): written when it acquires, read by whoever
/// finds the lock taken, by `status` and by `list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HolderInfo {
    pub host: String,
    /// redlock-run's pid.
    pub pid: u32,
    /// The program's name (`sh -c` for --shell; the full argv only with
    /// --record-args).
    pub command: String,
    /// When it acquired, ms since the epoch.
    pub since_ms: u64,
    /// The acquisition's token: a description is only believed next to a
    /// lock that holds this same token.
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl HolderInfo {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain strings and numbers")
    }

    /// The description stored next to a lock holding `token`, if it is
    /// one of ours and matches.
    pub(crate) fn parse_for(json: &str, token: &str) -> Option<Self> {
        serde_json::from_str::<Self>(json)
            .ok()
            .filter(|i| i.token == token)
    }
}

/// One finished run in the run history (`{KEY}:redlock-run:history`, and
/// `status --json`'s `last_runs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunEntry {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub label: Option<String>,
    /// RFC 3339 UTC with milliseconds.
    pub started: String,
    pub ended: String,
    pub duration_ms: u64,
    /// What redlock-run exited with.
    pub exit_code: i32,
    /// `ok`, `failed`, `signalled` or `lost`.
    pub outcome: String,
    pub fencing_token: u64,
    /// schedule: the tick (RFC 3339); null for plain runs.
    pub tick: Option<String>,
}

impl RunEntry {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain strings and numbers")
    }
}

/// Who holds a lock we could not take.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    /// The holder's description, when the holder is a redlock-run.
    pub(crate) info: Option<HolderInfo>,
    /// The value stored at the key.
    pub token: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Host, command and label were written by another host: escaped,
        // so they cannot forge lines or drive the terminal.
        match &self.info {
            Some(i) => {
                write!(
                    f,
                    "{} pid {} ({})",
                    escape_controls(&i.host),
                    i.pid,
                    escape_controls(&i.command)
                )?;
                match &i.label {
                    Some(label) => write!(f, " label {:?}", LabelShown(label)),
                    None => Ok(()),
                }
            }
            None if self.token.is_empty() => write!(f, "another client"),
            None => write!(f, "another client (value {:?})", truncate(&self.token, 40)),
        }
    }
}

/// A label as `status` shows it: escaped, between quotes.
struct LabelShown<'a>(&'a str);

impl std::fmt::Debug for LabelShown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", escape_controls(self.0))
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The log target of configuration warnings: shown even when only errors
/// are (src/logging.rs), once each.
pub(crate) const CONFIG_WARNINGS: &str = "redlock_run::lock::masters";

/// How many finished runs the history keeps.
pub(crate) const HISTORY_LEN: usize = 20;

/// How long an abandoned waiters' queue outlives its last registration.
const QUEUE_TTL_MS: &str = "60000";

/// How long a [`Locker::reader`]'s requests may take.
pub(crate) const READER_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A reader's timings: it never acquires, so only the I/O timeout
/// (half the TTL, [`READER_IO_TIMEOUT`]) matters; no replicas are waited
/// for, one holder at a time.
const READER_LEASE: Lease = Lease {
    ttl: Duration::from_secs(2 * READER_IO_TIMEOUT.as_secs()),
    refresh: Duration::from_secs(3),
    kill_after: Duration::from_secs(1),
    min_hold: Duration::ZERO,
    wait_replicas: 0,
    limit: 1,
};

/// What an acquisition attempt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// One plain attempt.
    Once,
    /// schedule: only if this tick (ms since the epoch) has not been
    /// claimed, and only if it lies at most `bound_ms` in Redis's future.
    Tick { tick: u64, bound_ms: u64 },
    /// A waiter's attempt: on failure, (re-)queue `waiter` with this score
    /// (its arrival time, so the queue is served in order).
    Wait { score: u64, waiter: &'a str },
}

/// The result of one acquisition attempt.
#[derive(Debug)]
pub enum Attempt {
    Acquired(Grant),
    /// Held by someone else; `pttl` is the shortest remaining lease seen.
    Held {
        pttl: Option<Duration>,
        holder: Holder,
        /// schedule: the holder is an attempt (or a run) for this same
        /// tick that may yet be undone, so trying again can still win it.
        same_tick: bool,
    },
    /// schedule: this host's clock is ahead of Redis's by `skew_ms`, too
    /// far to claim the tick.
    ClockAhead {
        skew_ms: i64,
    },
    /// schedule: this tick (or a later one) already ran.
    AlreadyRan {
        last_tick: u64,
    },
    /// The key is used with another `--limit`: `stored` is the N its
    /// holders or waiters use (0: more than one, how many is not stored).
    Mismatch {
        stored: u64,
    },
    /// Too few masters could be asked for a quorum to be possible.
    /// `permanent`: retrying cannot help (auth refused, or the server
    /// rejects the request, e.g. KEY holds another type).
    Unavailable {
        reason: String,
        permanent: bool,
    },
}

/// The result of one renewal.
#[derive(Debug)]
pub enum Renewal {
    Extended {
        valid_until: BootInstant,
    },
    /// A quorum says our token is gone: the lock is lost for certain.
    Lost(String),
    /// Could not renew this time (timeouts, errors, no quorum either way).
    Failed(String),
}

/// One lock on its masters: what every request of the protocol needs. Its
/// methods live beside the step they take: acquiring (`acquire.rs`),
/// waiting (`wait.rs`), renewing (`renew.rs`, driven by the [`Keeper`]),
/// releasing (`release.rs`), and the reads and repairs of `status`,
/// `list`, `release --force`, `forget` and `doctor` (`status.rs`,
/// `scan.rs`, `forget.rs`, `probe.rs`, `masters.rs`). Its state is private
/// to this module: callers build one with [`Locker::new`] (to hold the
/// lock) or [`Locker::reader`] (to look at and break locks).
pub struct Locker {
    nodes: Vec<Node>,
    /// False once `check_masters` found one server listed twice.
    distinct: bool,
    keys: Keys,
    lease: Lease,
    /// schedule: an upper bound on the per-master timeout (a tenth of the
    /// interval), so one slow master cannot make a tick's attempt outlast
    /// the tick.
    timeout_cap: Option<Duration>,
}

impl Locker {
    pub fn new(endpoints: &[Endpoint], key: &str, lease: Lease) -> Self {
        Locker {
            nodes: endpoints
                .iter()
                .cloned()
                .map(|e| {
                    Node::new(e).waiting_for_replicas(lease.wait_replicas, lease.wait_timeout())
                })
                .collect(),
            distinct: true,
            keys: Keys::new(key),
            lease,
            timeout_cap: None,
        }
    }

    /// A locker that never takes the lock, for `status`, `list` and
    /// `release --force`: it reads and breaks locks with one-off requests,
    /// each given [`READER_IO_TIMEOUT`].
    pub(crate) fn reader(endpoints: &[Endpoint], key: &str) -> Self {
        Locker::new(endpoints, key, READER_LEASE)
    }

    /// Point this locker at lock `key` (a reader going through the locks
    /// `list` found, on the same connections).
    pub(crate) fn set_key(&mut self, key: &str) {
        self.keys = Keys::new(key);
    }

    /// The names of the lock's keys.
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The lease's timings this locker acquires and renews with.
    pub(crate) fn lease(&self) -> &Lease {
        &self.lease
    }

    /// How long one request of a one-off read or repair may take.
    pub(crate) fn io_timeout(&self) -> Duration {
        self.lease.io_timeout()
    }

    pub(crate) fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// Whether, at release, enough masters no longer hold our token that
    /// the lock was certainly lost while the command ran (taken by another
    /// holder, or gone with a restart that lost the data: our own lease
    /// had not run out, or the supervisor would have stopped the command).
    /// When the same server is listed twice, its second name finds the key
    /// already released, so then only another holder's value counts.
    pub(crate) fn lost_by(&self, c: Count) -> bool {
        let gone = if self.distinct {
            c.absent + c.taken
        } else {
            c.taken
        };
        gone > self.nodes.len() - self.quorum()
    }

    fn is_quorum(&self) -> bool {
        self.nodes.len() > 1
    }

    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// How long one master may take to answer within an acquisition: with
    /// one master, as long as sensible; with several, small next to the TTL
    /// so that a dead master does not eat the lease.
    fn node_timeout(&self) -> Duration {
        let io = self.lease.io_timeout();
        let t = if self.is_quorum() {
            (self.lease.ttl / 20).max(Duration::from_millis(50)).min(io)
        } else {
            io
        };
        self.timeout_cap.map_or(t, |cap| t.min(cap))
    }

    /// Cap the per-master timeout of acquisitions (see `timeout_cap`).
    pub(crate) fn cap_node_timeout(&mut self, cap: Duration) {
        self.timeout_cap = Some(cap);
    }

    /// How release scripts wake waiters: sharded pub/sub (`SPUBLISH`) in a
    /// Cluster, so a wake-up stays on the key's shard; `PUBLISH` elsewhere.
    pub(crate) fn publish_command(&self) -> &'static str {
        if self
            .nodes
            .iter()
            .any(|n| matches!(n.source(), topology::Source::Cluster(_)))
        {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// A fresh, unguessable token for one acquisition.
    pub fn new_token() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_shown_escaped_and_believed_only_for_their_token() {
        let h = Holder {
            info: Some(HolderInfo {
                host: "h\nx".into(),
                pid: 1,
                command: "c\u{1b}".into(),
                since_ms: 0,
                token: "t".into(),
                label: Some("l\n".into()),
            }),
            token: "t".into(),
        };
        assert_eq!(h.to_string(), "h\\nx pid 1 (c\\x1b) label \"l\\n\"");
        // A description that is not ours (a forged pid), or that belongs to
        // another token, is not believed.
        let forged = r#"{"host":"h","pid":"1\n","command":"c","since_ms":0,"token":"t"}"#;
        assert_eq!(HolderInfo::parse_for(forged, "t"), None);
        let json = h.info.as_ref().unwrap().to_json();
        assert_eq!(HolderInfo::parse_for(&json, "t"), h.info);
        assert_eq!(HolderInfo::parse_for(&json, "other"), None);
    }

    #[test]
    fn a_reader_gives_each_request_its_io_timeout() {
        let r = Locker::reader(&[], "k");
        assert_eq!(r.io_timeout(), READER_IO_TIMEOUT);
        assert_eq!(r.lease().limit, 1);
        let mut r = r;
        r.set_key("other");
        assert_eq!(r.keys().lock, "other");
        assert_eq!(r.keys().fence, Keys::new("other").fence);
    }

    /// Every key name built from `alphabet`, up to `len` characters.
    fn key_shapes(alphabet: &[&str], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|k| alphabet.iter().map(move |c| format!("{k}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all.retain(|k| !k.is_empty());
        all
    }

    fn auxiliary_names(k: &Keys) -> Vec<String> {
        let token = Locker::new_token();
        vec![
            k.fence.clone(),
            k.tick.clone(),
            k.waiters.clone(),
            k.holder.clone(),
            k.channel.clone(),
            k.released.clone(),
            k.history.clone(),
            k.holders.clone(),
            k.limit.clone(),
            k.woken.clone(),
            format!("{}{token}", k.wake_prefix),
        ]
    }

    /// A Lua script may only touch one slot in a Cluster (CROSSSLOT
    /// otherwise): every name of a lock, channels included, lives in the
    /// lock key's slot, whatever braces the key holds, and no two keys
    /// share an auxiliary name.
    #[test]
    fn every_auxiliary_name_is_in_the_lock_keys_slot() {
        let mut keys = key_shapes(&["a", "{", "}", ":"], 6);
        keys.extend(
            [
                "jobs{eu}",
                "{eu}jobs",
                "{}",
                "a{}b{c}",
                "{{a}}",
                "a}b",
                "}{",
                "{}}",
                "x{y}z{w}",
                "nightly-report",
                "caf\u{e9}{\u{6771}}",
                "redlock-run:fence",
            ]
            .map(String::from),
        );
        keys.sort();
        keys.dedup();
        let mut seen = std::collections::HashMap::new();
        for key in &keys {
            let k = Keys::new(key);
            assert_eq!(k.lock, *key, "the lock itself stays at KEY");
            // Tools and tests recognise the names by their ending.
            assert!(k.fence.ends_with(":redlock-run:fence"), "{}", k.fence);
            assert!(k.released.ends_with(":redlock-run:released-tokens"));
            let want = slot::key_slot(key.as_bytes());
            for name in auxiliary_names(&k) {
                assert_eq!(
                    slot::key_slot(name.as_bytes()),
                    want,
                    "{name:?} is not in the slot of {key:?}"
                );
                if let Some(other) = seen.insert(name.clone(), key.clone()) {
                    panic!("{name:?} belongs to both {other:?} and {key:?}");
                }
            }
        }
        // Names without braces keep the names earlier versions used, so
        // an upgrade keeps the fencing counter.
        assert_eq!(Keys::new("nightly").fence, "{nightly}:redlock-run:fence");
    }
}
