//! Run mode: take the lock (waiting if asked), run the command under it,
//! release it, and turn all of that into one exit code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use futures_util::StreamExt;

use crate::child;
use crate::cli::Timeout;
use crate::config::{Lease, Place, Program};
use crate::display::escape_controls;
use crate::exit::Failure;
use crate::guardian;
use crate::lock::{Attempt, Grant, HolderInfo, Keeper, Locker, RunEntry, WaitOutcome};
use crate::outcome::RunEnd;
use crate::signals::Signals;
use crate::supervise::supervise;

/// Everything run mode needs, checked.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub place: Place,
    pub lease: Lease,
    pub program: Program,
    pub timeout: Timeout,
    /// `--connect-timeout`: the longest one master may take to answer an
    /// attempt.
    pub connect_timeout: Duration,
    pub conflict_exit_code: u8,
}

/// The description of us stored beside the lock, for `status` and for the
/// "held by" lines of other callers.
pub fn holder_json(token: &str, program: &Program) -> String {
    HolderInfo {
        host: hostname(),
        pid: std::process::id(),
        command: program.stored(),
        since_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
        token: token.to_string(),
        label: program.label.clone(),
    }
    .to_json()
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into())
}

/// Run the plan: how the command ran under the lock, or why it did not.
pub async fn run(plan: RunPlan) -> Result<RunEnd> {
    // Installed before the first request, so that a signal can never leave
    // a lock behind: from here on it ends the wait, or is forwarded.
    let mut signals = Signals::install()?;
    let mut locker = Locker::new(&plan.place.endpoints, &plan.place.key, plan.lease);
    locker.cap_node_timeout(plan.connect_timeout);
    let began = std::time::Instant::now();
    locker.check_masters().await;
    // --timeout counts from here: the masters' check (a quorum only) comes
    // out of it, leaving at least a moment for a wait to stay a wait; and
    // out of --connect-timeout for --timeout 0's one attempt.
    let checked = began.elapsed();
    let timeout = match plan.timeout {
        Timeout::After(d) if d.is_zero() => {
            let left = plan.connect_timeout.saturating_sub(checked);
            locker.cap_node_timeout(left.max(Duration::from_millis(10)));
            Some(d)
        }
        Timeout::After(d) => Some(d.saturating_sub(checked).max(Duration::from_millis(1))),
        Timeout::Never => None,
    };

    let mut progress = crate::progress::Progress::new(&plan.place.key, plan.timeout);
    let outcome = locker
        .acquire_waiting_observed(
            |token| holder_json(token, &plan.program),
            timeout,
            signals.next(),
            &mut progress,
        )
        .await;
    progress.end(&outcome);
    let grant = match outcome {
        WaitOutcome::Acquired(g) => g,
        WaitOutcome::Cancelled(sig) => {
            let sig = sig.expect("the signal stream never ends");
            return Err(Failure::Interrupted {
                name: sig.to_string(),
                signo: sig.signo(),
            }
            .into());
        }
        WaitOutcome::TimedOut {
            last,
            ever_reachable,
        } => return Err(not_acquired(&plan, last, ever_reachable).into()),
    };
    tracing::info!(
        key = %escape_controls(&plan.place.key),
        fencing_token = grant.fencing,
        "lock acquired"
    );
    run_locked(&plan, locker, grant, &mut signals).await
}

fn not_acquired(plan: &RunPlan, last: Attempt, ever_reachable: bool) -> Failure {
    match last {
        Attempt::Held { holder, .. } => Failure::Conflict {
            key: plan.place.key.clone(),
            holder: holder.to_string(),
        },
        Attempt::Unavailable { reason, .. } if ever_reachable => Failure::Conflict {
            key: plan.place.key.clone(),
            holder: format!("someone else (then Redis failed: {reason})"),
        },
        Attempt::Unavailable { reason, .. } => {
            Failure::Unavailable(format!("cannot take lock {:?}: {reason}", plan.place.key))
        }
        Attempt::Mismatch { stored } => {
            Failure::limit_mismatch(&plan.place.key, plan.lease.limit, stored)
        }
        Attempt::AlreadyRan { .. } | Attempt::ClockAhead { .. } | Attempt::Acquired(_) => {
            unreachable!("run mode neither claims ticks nor fails on success")
        }
    }
}

/// With the lock held: run the command, supervise it, release.
pub async fn run_locked(
    plan: &RunPlan,
    locker: Locker,
    grant: Grant,
    signals: &mut Signals,
) -> Result<RunEnd> {
    let (_, end) = run_under_lock(
        &plan.place.key,
        &plan.lease,
        &plan.program,
        locker,
        &grant,
        signals,
        None,
    )
    .await;
    Ok(end?)
}

/// The one code path for running a command under a held lock (run mode
/// and every schedule tick): spawn with the lock's environment plus
/// `extra_env`, renew while it runs, supervise, release (or hold for
/// `--min-hold`). Hands the locker back for the next use. The error is a
/// failure to start the command (nothing ran, the lock was given back).
pub async fn run_under_lock(
    key: &str,
    lease: &Lease,
    program: &Program,
    mut locker: Locker,
    grant: &Grant,
    signals: &mut Signals,
    tick: Option<&str>,
) -> (Locker, Result<RunEnd, Failure>) {
    let fencing = grant.fencing.to_string();
    let mut env = vec![
        ("REDLOCK_KEY", key),
        ("REDLOCK_TOKEN", grant.token.as_str()),
        ("REDLOCK_FENCING_TOKEN", fencing.as_str()),
    ];
    if let Some(tick) = tick {
        env.push(("REDLOCK_TICK", tick));
    }
    child::become_subreaper();
    // The guardian's deadline is set before the command exists.
    let spawned = guardian::prepare(lease.kill_at(grant.valid_until))
        .map_err(|e| Failure::Internal(format!("the guardian is gone ({e}); nothing was run")))
        .and_then(|()| child::spawn(program, &env));
    let mut child = match spawned {
        Ok(c) => c,
        Err(f) => {
            // Nothing ran: give the lock back at once, whatever --min-hold says.
            if let Err(e) = locker.release(&grant.token).await {
                tracing::error!(error = %e, "could not release the lock; it expires by itself");
            }
            return (locker, Err(f));
        }
    };
    tracing::debug!(pid = child.pid(), "command started");

    let started = SystemTime::now();
    let mut keeper = Keeper::start(locker, grant);
    // Returns only once the command's whole group is gone.
    let mut end = supervise(&mut child, lease, keeper.state(), signals).await;
    child.restore_terminal();
    let mut locker = keeper.stop().await;
    let run = RunRecord {
        program,
        fencing: grant.fencing,
        started,
        tick,
    };
    if let Some(why) = finish(&mut locker, grant, lease.min_hold, &end, &run).await {
        end = end.lost_at_release(why);
        // Recorded as it ended: the release did not record it.
        locker.record(&run.entry(&end), grant.fencing).await;
    }
    (locker, Ok(end))
}

/// What the run history says of one finished run.
pub struct RunRecord<'a> {
    pub program: &'a Program,
    pub fencing: u64,
    pub started: SystemTime,
    /// schedule: the tick (RFC 3339).
    pub tick: Option<&'a str>,
}

impl RunRecord<'_> {
    /// The history entry (JSON) for a run that ended with `end`: its
    /// exit code and [`RunEnd::history_kind`].
    pub fn entry(&self, end: &RunEnd) -> String {
        let ended = SystemTime::now();
        let ms =
            |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let rfc = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
        RunEntry {
            host: hostname(),
            pid: std::process::id(),
            command: self.program.stored(),
            label: self.program.label.clone(),
            started: rfc(self.started),
            ended: rfc(ended),
            duration_ms: ms(ended).saturating_sub(ms(self.started)),
            exit_code: end.code(),
            outcome: end.history_kind().to_string(),
            fencing_token: self.fencing,
            tick: self.tick.map(String::from),
        }
        .to_json()
    }
}

/// Release the lock, or with `--min-hold` keep it until the hold is over.
/// A failure to reach Redis is logged; the exit code stays the command's.
/// Returns why the lock was lost if the release shows it was not ours to
/// the end (it expired, or another holder has it): the run then exits 70.
pub async fn finish(
    locker: &mut Locker,
    grant: &Grant,
    min_hold: Duration,
    end: &RunEnd,
    run: &RunRecord<'_>,
) -> Option<String> {
    let entry = run.entry(end);
    if end.lock_lost() {
        // Not ours any more: only a compare-and-delete, which cannot touch
        // another holder's lock; the run is recorded apart.
        let _ = locker.release(&grant.token).await;
        locker.record(&entry, grant.fencing).await;
        return None;
    }
    if let RunEnd::Internal { .. } = end {
        let _ = locker.release_recording(&grant.token, &entry).await;
        return None;
    }
    let held_for = grant.acquired_at.elapsed();
    let holding = held_for < min_hold;
    let result = if holding {
        let left = min_hold - held_for;
        tracing::info!(
            hold_ms = left.as_millis() as u64,
            "keeping the lock for --min-hold"
        );
        locker.hold_for(&grant.token, left, &entry).await
    } else {
        locker.release_recording(&grant.token, &entry).await
    };
    match result {
        Ok(c) if locker.lost_by(c) => {
            let why = "the lock was no longer ours when the command ended (taken by \
                       another holder, or lost with Redis's data) while the command ran";
            tracing::error!("{why}");
            Some(why.to_string())
        }
        Ok(_) if holding => {
            tracing::debug!("lock kept until --min-hold is over");
            None
        }
        Ok(_) => {
            tracing::debug!("lock released");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "could not release the lock; it expires by itself within --ttl");
            None
        }
    }
}
