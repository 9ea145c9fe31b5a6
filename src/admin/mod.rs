//! `status`, `list` and `release --force`: looking at and breaking locks
//! by hand.

mod list;

pub(crate) use list::list;

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::config::Place;
use crate::display::{escape_controls, format_ttl, out};
use crate::exit::{self, Failure, Reported};
use crate::lock::{FenceKind, Forgot, Holder, Locker, RunEntry, Snapshot, Status};
use crate::outcome::StatusEnd;

/// One of `holders` in `status --json`: `holder`'s fields (null for a
/// holder that is not a redlock-run), its lease left and fencing token.
fn slot_json(s: &Snapshot) -> Value {
    let mut v = match holder_fields(&s.holder) {
        Value::Null => {
            json!({"host": null, "pid": null, "command": null, "label": null, "since": null})
        }
        v => v,
    };
    v["ttl_ms"] = json!(s.ttl_ms);
    v["fencing_token"] = json!(s.fencing_token);
    v
}

/// `holder` in `status --json`: who holds the lock (host, pid, command,
/// label, since), or null for a holder that is not a redlock-run.
fn holder_fields(h: &Holder) -> Value {
    match &h.info {
        Some(i) => json!({
            "host": i.host,
            "pid": i.pid,
            "command": i.command,
            "label": i.label,
            "since": since(i.since_ms),
        }),
        None => Value::Null,
    }
}

fn since(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `redlock-run status`: prints the state: held or free; unreachable (fewer
/// masters than a quorum answered) is logged here.
pub(crate) async fn status(place: &Place, as_json: bool) -> Result<StatusEnd, Reported> {
    let mut locker = Locker::reader(&place.endpoints, &place.key);
    let st = locker.status().await;
    if st.reachable() < st.quorum {
        let errors: Vec<String> = st
            .masters
            .iter()
            .filter_map(|m| m.value.as_ref().err().cloned())
            .collect();
        if as_json {
            // Unknown, not free: a reader of the JSON alone must not
            // take it for a free lock.
            let mut v = to_json(&st, st.masters.len() > 1);
            v["held"] = Value::Null;
            v["error"] = json!(exit::advised(&format!(
                "cannot read the lock: {} of {} masters reachable, {} needed: {}",
                st.reachable(),
                st.masters.len(),
                st.quorum,
                errors.join("; ")
            )));
            out(&format!("{v}\n"));
        }
        let why = format!("cannot read lock {:?}: {}", place.key, errors.join("; "));
        let failure = Failure::Unavailable(why);
        tracing::error!("{failure}");
        return Err(Reported(failure));
    }
    if as_json {
        out(&format!("{}\n", to_json(&st, st.masters.len() > 1)));
    } else {
        out(&to_text(&st, st.masters.len() > 1));
    }
    Ok(if st.held().is_some() {
        StatusEnd::Held
    } else {
        StatusEnd::Free
    })
}

fn to_json(st: &Status, quorum_mode: bool) -> Value {
    let held = st.held();
    let fencing = st.fencing();
    let mut v = json!({
        "held": held.is_some(),
        "key": st.key,
        "ttl_ms": held.and_then(|s| s.ttl_ms),
        "fencing_token": fencing.map(|(t, _)| t),
        "fencing_token_kind": fencing.map(|(_, k)| k.as_str()),
        "holder": held.map_or(Value::Null, |s| holder_fields(&s.holder)),
        "limit": st.limit(),
        "holders": st
            .holders()
            .iter()
            .map(slot_json)
            .collect::<Vec<_>>(),
        "last_runs": st.last_runs(),
        "never_used": st.never_used(),
    });
    // A --min-hold holder whose command ended: when.
    let runs = st.last_runs();
    if let Some(s) = held.filter(|_| !st.is_shared() && v["holder"].is_object()) {
        v["holder"]["command_ended"] = json!(ended_run(&runs, s).map(|r| &r.ended));
    }
    if let Some(list) = v["holders"].as_array_mut() {
        for (h, s) in list.iter_mut().zip(st.holders()) {
            h["command_ended"] = json!(ended_run(&runs, &s).map(|r| &r.ended));
        }
    }
    if quorum_mode {
        v["quorum"] = json!(st.quorum);
        v["masters"] = st
            .masters
            .iter()
            .map(|m| match &m.value {
                Ok(snap) => json!({
                    "url": m.name,
                    "reachable": true,
                    "held": snap.is_some(),
                    "ttl_ms": snap.as_ref().and_then(|s| s.ttl_ms),
                    "fencing_token": m.fencing_token,
                    "holder": snap.as_ref().map_or(Value::Null, |s| holder_fields(&s.holder)),
                }),
                Err(e) => json!({"url": m.name, "reachable": false, "error": e}),
            })
            .collect();
    }
    v
}

/// `status`'s text: the lock's state, its last run, and in quorum mode
/// what each master says.
fn to_text(st: &Status, quorum_mode: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let fencing = st.fencing();
    let fence = match fencing {
        None => "none yet".to_string(),
        Some((t, FenceKind::UpperBound)) => format!("at most {t} (not every master answered)"),
        Some((t, _)) => t.to_string(),
    };
    match st.held() {
        Some(_) if st.is_shared() => shared_text(&mut out, st, &fence),
        Some(s) => held_text(&mut out, st, s, &fence),
        None if st.never_used() => {
            let _ = writeln!(
                out,
                "{}: never used (no lock, fencing counter or run history: is the key's name right?)",
                escape_controls(&st.key)
            );
        }
        None => free_text(&mut out, st, fencing, &fence),
    }
    if let Some(r) = st.last_runs().first() {
        let _ = writeln!(out, "  last run:      {}", last_run_line(r));
    }
    if quorum_mode {
        masters_text(&mut out, st);
    }
    out
}

/// A `--limit` lock with holders: how many of how many, and each.
fn shared_text(out: &mut String, st: &Status, fence: &str) {
    use std::fmt::Write;
    let holders = st.holders();
    let count = holders.len();
    let of = match st.limit() {
        Some(n) if count as u64 >= n => format!("{count} of {n} (--limit {n}, full)"),
        Some(n) => format!("{count} of {n} (--limit {n})"),
        None => format!("{count} (--limit not stored)"),
    };
    let _ = writeln!(out, "{}: held by {of}", escape_controls(&st.key));
    for s in &holders {
        let _ = writeln!(out, "  holder:        {}", slot_line(s, &st.last_runs()));
    }
    let _ = writeln!(out, "  fencing token: {fence}");
}

/// A lock with one holder, `s`: who, since when, how long it has left.
fn held_text(out: &mut String, st: &Status, s: &Snapshot, fence: &str) {
    use std::fmt::Write;
    let ended = match ended_run(&st.last_runs(), s) {
        Some(r) => format!(
            ": command ended at {}, lock kept until {} (--min-hold)",
            escape_controls(&r.ended),
            kept_until(s.ttl_ms)
        ),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "{}: held by {}{ended}",
        escape_controls(&st.key),
        s.holder
    );
    if let Some(i) = &s.holder.info {
        let _ = writeln!(out, "  since:         {}", since(i.since_ms));
    }
    let _ = writeln!(out, "  ttl:           {}", format_ttl(s.ttl_ms));
    let _ = writeln!(out, "  fencing token: {fence}");
}

/// A free lock: its fencing token, said what it is, and its limit.
fn free_text(out: &mut String, st: &Status, fencing: Option<(u64, FenceKind)>, fence: &str) {
    use std::fmt::Write;
    let _ = writeln!(out, "{}: free", escape_controls(&st.key));
    let note = match fencing {
        Some((_, FenceKind::LastIssued)) => " (last issued)",
        Some((_, FenceKind::QuorumBound)) => {
            " (reached on a quorum: every token issued so far is <= it, the next is higher)"
        }
        _ => "",
    };
    let _ = writeln!(out, "  fencing token: {fence}{note}");
    if let Some(n) = st.limit().filter(|&n| n > 1) {
        let _ = writeln!(out, "  limit:         {n}");
    }
}

/// Quorum mode: what each master says.
fn masters_text(out: &mut String, st: &Status) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "  masters (quorum {} of {}):",
        st.quorum,
        st.masters.len()
    );
    for m in &st.masters {
        let line = match &m.value {
            Ok(Some(s)) => format!("held by {}, ttl {}", s.holder, format_ttl(s.ttl_ms)),
            Ok(None) => "free".to_string(),
            Err(e) => format!("unreachable: {e}"),
        };
        let _ = writeln!(out, "    {}  {line}", m.name);
    }
}

/// The recorded run of a holder whose command already ended while it keeps
/// the lock (`--min-hold` records the run when the command ends, and
/// extends the lock instead of releasing it): the same host and pid,
/// started at or after the holder acquired.
fn ended_run<'r>(runs: &'r [RunEntry], s: &Snapshot) -> Option<&'r RunEntry> {
    let i = s.holder.info.as_ref()?;
    let acquired = since(i.since_ms);
    runs.iter()
        .find(|r| r.host == i.host && r.pid == i.pid && r.started >= acquired)
}

/// When a lease with `ttl_ms` left ends, by this host's clock.
fn kept_until(ttl_ms: Option<u64>) -> String {
    match ttl_ms {
        Some(ms) => humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() + Duration::from_millis(ms),
        )
        .to_string(),
        None => "released (no expiry)".into(),
    }
}

/// One `--limit` holder: "host pid 42 (backup.sh), since ..., ttl 29s,
/// fencing token 7".
fn slot_line(s: &Snapshot, runs: &[RunEntry]) -> String {
    let mut line = s.holder.to_string();
    if let Some(i) = &s.holder.info {
        line.push_str(&format!(", since {}", since(i.since_ms)));
    }
    if let Some(r) = ended_run(runs, s) {
        line.push_str(&format!(
            ", command ended at {}, lock kept until {} (--min-hold)",
            escape_controls(&r.ended),
            kept_until(s.ttl_ms)
        ));
    }
    line.push_str(&format!(", ttl {}", format_ttl(s.ttl_ms)));
    match s.fencing_token {
        Some(t) => line.push_str(&format!(", fencing token {t}")),
        None => line.push_str(", fencing token unknown"),
    }
    line
}

/// One line for a recorded run: "ok (exit 0) 2026-11-28T01:00:00.123Z on
/// host pid 42 (backup.sh), 1.2s, fencing token 7, tick ...".
fn last_run_line(r: &RunEntry) -> String {
    let mut line = format!(
        "{} (exit {}) ended {} on {} pid {} ({}), took {}, fencing token {}",
        escape_controls(&r.outcome),
        r.exit_code,
        escape_controls(&r.ended),
        escape_controls(&r.host),
        r.pid,
        escape_controls(&r.command),
        humantime::format_duration(Duration::from_millis(r.duration_ms)),
        r.fencing_token,
    );
    if let Some(tick) = &r.tick {
        line.push_str(&format!(", tick {}", escape_controls(tick)));
    }
    line
}

/// A tick's time as `REDLOCK_TICK` shows it: RFC 3339 UTC, whole seconds
/// unless it has a fraction.
fn tick_time(ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    if ms % 1000 == 0 {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// `redlock-run release --force` (without it, the entry refuses:
/// `Failure::unforced`): prints what it removed.
pub(crate) async fn release(place: &Place) -> Result<(), Failure> {
    let mut locker = Locker::reader(&place.endpoints, &place.key);
    let (n, quorum) = (locker.nodes().len(), locker.quorum());
    // What is there, read just before: to say what was removed.
    let before = locker.status().await;
    let ticks = locker.tick_claims(locker.io_timeout()).await;
    match locker.force_release().await {
        // Deleted where reachable, but the masters that did not answer
        // may still be a quorum holding it.
        Ok(c) if c.yes + c.absent + c.taken < quorum => Err(Failure::Unavailable(format!(
            "lock {:?} deleted on {} of {n} masters only: {} answered, a quorum is {quorum}; it may still be held",
            place.key,
            c.yes,
            c.yes + c.absent + c.taken,
        ))),
        Ok(c) => {
            let mut removed = Vec::new();
            if let Some(t) = ticks.iter().flatten().max() {
                removed.push(format!("the tick claim ({})", tick_time(*t)));
            }
            if let Some(l) = before.masters.iter().filter_map(|m| m.limit).max() {
                removed.push(format!("the stored --limit {l}"));
            }
            let on = if n > 1 {
                format!(" on {} of {n} masters", c.yes)
            } else {
                String::new()
            };
            let line = if c.yes == 0 && removed.is_empty() {
                "was not held; nothing removed".to_string()
            } else if c.yes == 0 {
                format!("was not held; removed {}{on}", removed.join(", "))
            } else {
                let holders = before.holders();
                let by = match holders.as_slice() {
                    [] => "a holder that took it just now".to_string(),
                    [one] => one.holder.to_string(),
                    all => format!(
                        "{} holders: {}",
                        all.len(),
                        all.iter()
                            .map(|s| s.holder.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                removed.insert(0, format!("the lock (held by {by})"));
                format!("released: removed {}{on}", removed.join(", "))
            };
            out(&format!("{}: {line}\n", escape_controls(&place.key)));
            Ok(())
        }
        Err(e) => Err(Failure::Unavailable(format!(
            "cannot reach Redis to release {:?}: {e}",
            place.key
        ))),
    }
}

/// `redlock-run release --forget`: retire a key. Removes everything kept
/// for it on every master, each in one step; refused (the conflict code,
/// 75) while the lock is held or waited for; 69 unless every master
/// answered.
pub(crate) async fn forget(place: &Place) -> Result<(), Failure> {
    let mut locker = Locker::reader(&place.endpoints, &place.key);
    let n = locker.nodes().len();
    let results = locker.forget(locker.io_timeout()).await;
    let (mut held, mut waited) = (false, false);
    let mut removed: Vec<&str> = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(Forgot::Held) => held = true,
            Ok(Forgot::Waited) => waited = true,
            Ok(Forgot::Removed(what)) => {
                for w in what {
                    if !removed.contains(&w) {
                        removed.push(w);
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if held {
        let st = locker.status().await;
        let by = match st.holders().first() {
            Some(s) => format!("held by {}", s.holder),
            None => "held".to_string(),
        };
        return Err(Failure::not_forgetting(&place.key, &by));
    }
    if waited {
        return Err(Failure::not_forgetting(&place.key, "waited for"));
    }
    if !errors.is_empty() {
        return Err(Failure::Unavailable(format!(
            "lock {:?} forgotten on {} of {n} masters only (run it again once they answer): {}",
            place.key,
            n - errors.len(),
            errors.join("; ")
        )));
    }
    let key = escape_controls(&place.key);
    if removed.is_empty() {
        out(&format!("{key}: nothing to forget\n"));
    } else {
        out(&format!(
            "{key}: forgotten: removed {}\n",
            removed.join(", ")
        ));
    }
    Ok(())
}
