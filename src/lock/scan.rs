//! Finding the locks this tool manages, for `redlock-run list`: `SCAN`
//! (never `KEYS`, which blocks the server for the whole keyspace) over the
//! holder descriptions (`:holder` beside a one-holder lock, `:holders`
//! beside a `--limit` one), a few hundred keys per call, up to a cap.

use std::collections::BTreeSet;

use super::{Keys, Locker};

/// Keys examined per `SCAN` call (a hint to the server, which bounds the
/// work of each call).
const SCAN_COUNT: &str = "1000";

/// Every holder description's name ends in this ([`Keys::aux`]), or
/// with `--limit` in this and an `s`.
const HOLDER_SUFFIX: &str = ":redlock-run:holder";

/// What a scan found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Lock keys, sorted, at most the cap.
    pub(crate) keys: Vec<String>,
    /// More matched than the cap.
    pub(crate) capped: bool,
    /// Per master, in order: scanned (to the end or to the cap), or why not.
    pub(crate) masters: Vec<Result<(), String>>,
}

impl Found {
    pub(crate) fn reachable(&self) -> usize {
        self.masters.iter().filter(|m| m.is_ok()).count()
    }
}

/// Why a SCAN failed; an ACL refusal names the permission `list` needs.
fn scan_error(name: &str, e: super::NodeError) -> String {
    if e.is_denied() {
        format!(
            "{name}: this user may not run SCAN, which list needs: grant it \
             (ACL SETUSER <user> +scan)"
        )
    } else {
        e.to_string()
    }
}

impl Locker {
    /// The keys matching the glob `pattern` (Redis glob syntax) of locks
    /// with a holder description, on any master; at most `max`.
    pub(crate) async fn scan_locks(&mut self, pattern: &str, max: usize) -> Found {
        let timeout = self.lease.io_timeout();
        // The two shapes of names (Keys::aux): `{KEY}:redlock-run:holder`
        // for keys without `}`, `{TAG}:KEY:redlock-run:holder` otherwise;
        // `holder*` finds `holders` (`--limit`) in the same walk too.
        let patterns = [
            format!("{{{pattern}}}{HOLDER_SUFFIX}*"),
            format!("{{*}}:{pattern}{HOLDER_SUFFIX}*"),
        ];
        let per_master = futures_util::future::join_all(self.nodes.iter_mut().map(|node| {
            let patterns = &patterns;
            async move {
                let mut keys = BTreeSet::new();
                for matching in patterns {
                    let mut cursor = "0".to_string();
                    loop {
                        let mut pipe = redis::pipe();
                        pipe.cmd("SCAN")
                            .arg(&cursor)
                            .arg("MATCH")
                            .arg(matching)
                            .arg("COUNT")
                            .arg(SCAN_COUNT);
                        let ((next, names),) = node
                            .query::<((String, Vec<String>),)>(&pipe, timeout)
                            .await
                            .map_err(|e| scan_error(node.name(), e))?;
                        keys.extend(names.iter().filter_map(|n| lock_key(n)));
                        // One past the cap tells that the cap was reached.
                        if keys.len() > max {
                            return Ok::<_, String>(keys);
                        }
                        if next == "0" {
                            break;
                        }
                        cursor = next;
                    }
                }
                Ok(keys)
            }
        }))
        .await;
        let mut found = Found::default();
        let mut all = BTreeSet::new();
        for r in per_master {
            found.masters.push(r.map(|keys| all.extend(keys)));
        }
        found.capped = all.len() > max;
        found.keys = all.into_iter().take(max).collect();
        found
    }

    /// Live waiters of each lock in `keys` (subscribers to its wake-up
    /// channel; every waiter subscribes on every master): the most any
    /// master counts, None when no master answered.
    pub(crate) async fn waiters(&mut self, keys: &[String]) -> Vec<Option<u64>> {
        let timeout = self.lease.io_timeout();
        let mut pipe = redis::pipe();
        let numsub = pipe.cmd("PUBSUB").arg("NUMSUB");
        for k in keys {
            numsub.arg(Keys::new(k).channel);
        }
        let replies = futures_util::future::join_all(
            self.nodes
                .iter_mut()
                .map(|node| node.query::<(Vec<(String, u64)>,)>(&pipe, timeout)),
        )
        .await;
        (0..keys.len())
            .map(|i| {
                replies
                    .iter()
                    .filter_map(|r| r.as_ref().ok().and_then(|(v,)| v.get(i)).map(|c| c.1))
                    .max()
            })
            .collect()
    }
}

/// The lock key whose holder description (or `--limit` holders' hash) is
/// `name`, if it is one: the name the key's own would have.
fn lock_key(name: &str) -> Option<String> {
    let base = name.strip_suffix('s').unwrap_or(name);
    let rest = base.strip_suffix(HOLDER_SUFFIX)?.strip_prefix('{')?;
    let key = match rest.strip_suffix('}') {
        Some(k) if !k.contains('}') => k,
        _ => rest.split_once("}:")?.1,
    };
    let own = Keys::new(key);
    (!key.is_empty() && (own.holder == name || own.holders == name)).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_names_give_their_lock_keys() {
        assert_eq!(
            lock_key("{deploy}:redlock-run:holder").as_deref(),
            Some("deploy")
        );
        assert_eq!(
            lock_key("{backups}:redlock-run:holders").as_deref(),
            Some("backups")
        );
        for k in ["a}b{c", "jobs{eu}", "x}", "{}", "a{b}c", "}{", "s", "}s"] {
            assert_eq!(lock_key(&Keys::new(k).holder).as_deref(), Some(k), "{k}");
            assert_eq!(lock_key(&Keys::new(k).holders).as_deref(), Some(k), "{k}");
        }
        assert_eq!(lock_key("{x}:redlock-run:fence"), None);
        assert_eq!(lock_key("{}:redlock-run:holder"), None);
        assert_eq!(lock_key("{x}:redlock-run:holderss"), None);
        assert_eq!(lock_key("{x}:redlock-run:holderx"), None);
    }
}
