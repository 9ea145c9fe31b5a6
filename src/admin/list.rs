//! `redlock-run list`: every held lock matching a glob, one line (or one
//! `status --json` object) each.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::to_json;
use crate::config::Endpoint;
use crate::display::{escape_controls, format_ttl, out};
use crate::exit::{Failure, Reported};
use crate::lock::{Found, Locker, MasterState, Snapshot, Status};

/// `redlock-run list`: every held lock whose key matches `pattern`, at
/// most `max` (none held is no failure); fewer masters than a quorum
/// scanned is logged here.
pub(crate) async fn list(
    endpoints: &[Endpoint],
    pattern: &str,
    max: usize,
    as_json: bool,
) -> Result<(), Reported> {
    let mut locker = Locker::reader(endpoints, "");
    let quorum_mode = endpoints.len() > 1;
    let found = locker.scan_locks(pattern, max).await;
    let quorum = locker.quorum();
    if found.reachable() < quorum {
        let errors: Vec<&str> = found
            .masters
            .iter()
            .filter_map(|m| m.as_ref().err().map(String::as_str))
            .collect();
        let why = format!(
            "cannot list locks: {} of {} masters reachable, {quorum} needed: {}",
            found.reachable(),
            endpoints.len(),
            errors.join("; ")
        );
        let failure = Failure::Unavailable(why);
        tracing::error!("{failure}");
        return Err(Reported(failure));
    }
    let (held, waiters) = held_locks(endpoints, &found, quorum).await;
    if as_json {
        let all: Vec<Value> = held
            .iter()
            .zip(&waiters)
            .map(|(st, w)| {
                let mut v = to_json(st, quorum_mode);
                v["waiters"] = json!(w);
                v
            })
            .collect();
        out(&format!("{}\n", Value::Array(all)));
    } else {
        out(&list_text(&held, &waiters, pattern, quorum_mode));
    }
    if found.capped {
        note(&format!(
            "showing {max} locks matching {pattern:?} (--max {max}); there are more"
        ));
    }
    Ok(())
}

/// The locks the scan `found` that are held, each read as `status` reads
/// it, with their waiters. Read on the masters that answered the scan (one
/// that did not would cost a timeout per lock), and kept when a quorum of
/// all the masters agrees it is held: it may have been released since the
/// scan saw it.
async fn held_locks(
    endpoints: &[Endpoint],
    found: &Found,
    quorum: usize,
) -> (Vec<Status>, Vec<Option<u64>>) {
    let answered: Vec<Endpoint> = endpoints
        .iter()
        .zip(&found.masters)
        .filter(|(_, m)| m.is_ok())
        .map(|(e, _)| e.clone())
        .collect();
    let mut reader = Locker::reader(&answered, "");
    let mut held = Vec::new();
    for key in &found.keys {
        reader.set_key(key);
        let mut read = reader.status().await.masters.into_iter();
        let masters = endpoints
            .iter()
            .zip(&found.masters)
            .filter_map(|(e, scanned)| match scanned {
                Ok(()) => read.next(),
                Err(why) => Some(MasterState::failed(e.display.clone(), why.clone())),
            })
            .collect();
        let st = Status {
            key: key.clone(),
            masters,
            quorum,
        };
        if st.held().is_some() {
            held.push(st);
        }
    }
    let keys: Vec<String> = held.iter().map(|st| st.key.clone()).collect();
    let waiters = if keys.is_empty() {
        Vec::new()
    } else {
        reader.waiters(&keys).await
    };
    (held, waiters)
}

/// A note on stderr, beside the output (never mixed into the JSON).
fn note(text: &str) {
    use std::io::Write as _;
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "redlock-run: note: {text}").and_then(|()| e.flush());
}

/// The first few of a `--limit` lock's holders, and how many more.
fn some_holders(holders: &[Snapshot]) -> String {
    const SHOWN: usize = 3;
    let mut text: Vec<String> = holders
        .iter()
        .take(SHOWN)
        .map(|h| h.holder.to_string())
        .collect();
    if holders.len() > SHOWN {
        text.push(format!("+{} more", holders.len() - SHOWN));
    }
    text.join(", ")
}

/// A table: one line per lock, columns aligned.
fn list_text(held: &[Status], waiters: &[Option<u64>], pattern: &str, quorum_mode: bool) -> String {
    if held.is_empty() {
        return format!("no lock matching {pattern:?} is held\n");
    }
    let mut rows = vec![
        [
            "KEY", "HOLDER", "SINCE", "TTL", "FENCING", "WAITERS", "LAST RUN", "MASTERS",
        ]
        .map(String::from),
    ];
    for (st, w) in held.iter().zip(waiters) {
        if let Some(s) = st.held() {
            rows.push(row(st, s, *w));
        }
    }
    let columns = if quorum_mode { 8 } else { 7 };
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for r in &rows {
        let cells: Vec<String> = (0..columns)
            .map(|c| format!("{:<w$}", r[c], w = widths[c]))
            .collect();
        text += cells.join("  ").trim_end();
        text.push('\n');
    }
    text
}

/// One lock's row: `st`, held by `s` (with `--limit`, the holder whose
/// lease ends first), with `waiters`.
fn row(st: &Status, s: &Snapshot, waiters: Option<u64>) -> [String; 8] {
    let agree = st
        .masters
        .iter()
        .filter(|m| {
            m.value
                .as_ref()
                .is_ok_and(|v| v.as_ref().is_some_and(|v| v.holder.token == s.holder.token))
        })
        .count();
    // With `--limit`: every holder (the first few), the oldest since,
    // the soonest lease end (`s`), the highest live fencing token.
    let holders = if st.is_shared() {
        st.holders()
    } else {
        Vec::new()
    };
    let who = match st.limit() {
        _ if !st.is_shared() => s.holder.to_string(),
        Some(n) => format!("{}/{n}: {}", holders.len(), some_holders(&holders)),
        None => format!("{}: {}", holders.len(), some_holders(&holders)),
    };
    let since_ms = if holders.is_empty() {
        s.holder.info.as_ref().map(|i| i.since_ms)
    } else {
        holders
            .iter()
            .filter_map(|h| h.holder.info.as_ref())
            .map(|i| i.since_ms)
            .min()
    };
    let fencing = holders
        .iter()
        .filter_map(|h| h.fencing_token)
        .max()
        .or(st.fencing().map(|(t, _)| t));
    [
        escape_controls(&st.key),
        who,
        since_ms.map_or("-".into(), |ms| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }),
        // Whole seconds: the table is read, not computed with.
        format_ttl(
            s.ttl_ms
                .map(|ms| if ms >= 1000 { ms - ms % 1000 } else { ms }),
        ),
        fencing.map_or("-".into(), |t| t.to_string()),
        waiters.map_or("?".into(), |n| n.to_string()),
        st.last_runs().first().map_or("-".into(), |r| {
            format!(
                "{} {}",
                escape_controls(&r.outcome),
                escape_controls(&r.ended)
            )
        }),
        format!("{agree}/{}", st.masters.len()),
    ]
}
