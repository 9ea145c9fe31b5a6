//! Run mode: take the lock (waiting if asked), run the command under it,
//! release it, and turn all of that into one exit code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use futures_util::StreamExt;

use crate::child;
use crate::cli::Timeout;
use crate::config::{Lease, Place, Program};
use crate::exit::{self, Failure};
use crate::guardian;
use crate::lock::{Attempt, Grant, Keeper, Locker, WaitOutcome};
use crate::signals::Signals;
use crate::supervise::{Outcome, supervise};

/// Everything run mode needs, checked.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub place: Place,
    pub lease: Lease,
    pub program: Program,
    pub timeout: Timeout,
    pub conflict_exit_code: u8,
}

/// The description of us stored beside the lock, for `status` and for the
/// "held by" lines of other callers.
pub fn holder_json(token: &str, program: &Program) -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into());
    let since_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let mut v = serde_json::json!({
        "host": host,
        "pid": std::process::id(),
        "command": program.stored(),
        "since_ms": since_ms,
        "token": token,
    });
    if let Some(label) = &program.label {
        v["label"] = label.as_str().into();
    }
    v.to_string()
}

/// Run the plan; returns the process exit code.
pub async fn run(plan: RunPlan) -> Result<i32> {
    // Installed before the first request, so that a signal can never leave
    // a lock behind: from here on it ends the wait, or is forwarded.
    let mut signals = Signals::install()?;
    let mut locker = Locker::new(&plan.place.endpoints, &plan.place.key, plan.lease);
    if locker.is_quorum() {
        locker.check_masters().await;
    }
    let timeout = match plan.timeout {
        Timeout::After(d) => Some(d),
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
                name: sig.as_str(),
                signo: sig as i32,
            }
            .into());
        }
        WaitOutcome::TimedOut {
            last,
            ever_reachable,
        } => return Err(not_acquired(&plan, last, ever_reachable).into()),
    };
    tracing::info!(key = %plan.place.key, fencing_token = grant.fencing, "lock acquired");
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
        Attempt::AlreadyRan { .. } | Attempt::Acquired(_) => {
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
) -> Result<i32> {
    let (_, outcome) = run_under_lock(
        &plan.place.key,
        &plan.lease,
        &plan.program,
        locker,
        &grant,
        signals,
        &[],
    )
    .await;
    Ok(exit::for_run(&outcome?)?)
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
    extra_env: &[(&str, &str)],
) -> (Locker, Result<Outcome, Failure>) {
    let fencing = grant.fencing.to_string();
    let mut env = vec![
        ("REDLOCK_KEY", key),
        ("REDLOCK_TOKEN", grant.token.as_str()),
        ("REDLOCK_FENCING_TOKEN", fencing.as_str()),
    ];
    env.extend_from_slice(extra_env);
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

    let mut keeper = Keeper::start(locker, grant);
    // Returns only once the command's whole group is gone.
    let mut outcome = supervise(&mut child, lease, keeper.state(), signals).await;
    child.restore_terminal();
    let mut locker = keeper.stop().await;
    let lost_at_release = finish(&mut locker, grant, lease.min_hold, &outcome).await;
    if outcome.lost.is_none() {
        outcome.lost = lost_at_release;
    }
    (locker, Ok(outcome))
}

/// Release the lock, or with `--min-hold` keep it until the hold is over.
/// A failure to reach Redis is logged; the exit code stays the command's.
/// Returns why the lock was lost if the release shows it was not ours to
/// the end (it expired, or another holder has it): the run then exits 70.
pub async fn finish(
    locker: &mut Locker,
    grant: &Grant,
    min_hold: Duration,
    outcome: &Outcome,
) -> Option<String> {
    if outcome.lost.is_some() || outcome.internal.is_some() {
        // Not ours any more (or unknown): only a compare-and-delete, which
        // cannot touch another holder's lock.
        let _ = locker.release(&grant.token).await;
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
        locker.hold_for(&grant.token, left).await
    } else {
        locker.release(&grant.token).await
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
