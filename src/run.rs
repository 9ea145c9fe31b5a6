//! Run mode: take the lock (waiting if asked), run the command under it
//! (`Run`, also each schedule tick's), release it, and say how it ended.

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
pub(crate) struct RunPlan {
    pub(crate) place: Place,
    pub(crate) lease: Lease,
    pub(crate) program: Program,
    pub(crate) timeout: Timeout,
    /// `--connect-timeout`: the longest one master may take to answer an
    /// attempt.
    pub(crate) connect_timeout: Duration,
    pub(crate) conflict_exit_code: u8,
}

/// The description of us stored beside the lock, for `status` and for the
/// "held by" lines of other callers.
pub(crate) fn holder_json(token: &str, program: &Program) -> String {
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
pub(crate) async fn run(plan: RunPlan) -> Result<RunEnd> {
    // Installed before the first request, so that a signal can never leave
    // a lock behind: from here on it ends the wait, or is forwarded.
    let mut signals = Signals::install()?;
    let run = Run::acquire(&plan, &mut signals).await?;
    let (_, end) = run.execute(&mut signals).await;
    Ok(end?)
}

/// What runs under the lock: the key, its lease, the command.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job<'a> {
    pub(crate) key: &'a str,
    pub(crate) lease: &'a Lease,
    pub(crate) program: &'a Program,
}

impl RunPlan {
    pub(crate) fn job(&self) -> Job<'_> {
        Job {
            key: &self.place.key,
            lease: &self.lease,
            program: &self.program,
        }
    }
}

/// One run of the command under the lock (run mode's, or a schedule
/// tick's), from the grant to the release: it owns the locker meanwhile,
/// and hands it back at the end (a schedule's next tick uses it).
pub(crate) struct Run<'a> {
    locker: Locker,
    grant: Grant,
    job: Job<'a>,
    /// schedule: the tick (RFC 3339), given to the command as REDLOCK_TICK
    /// and recorded in the run history.
    tick: Option<&'a str>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(
        locker: Locker,
        grant: Grant,
        job: Job<'a>,
        tick: Option<&'a str>,
    ) -> Run<'a> {
        Run {
            locker,
            grant,
            job,
            tick,
        }
    }

    /// Run mode: take the lock, waiting as `--timeout` says; a signal ends
    /// the wait.
    pub(crate) async fn acquire(
        plan: &'a RunPlan,
        signals: &mut Signals,
    ) -> Result<Run<'a>, Failure> {
        let mut locker = Locker::new(&plan.place.endpoints, &plan.place.key, plan.lease);
        locker.cap_node_timeout(plan.connect_timeout);
        let began = std::time::Instant::now();
        locker.check_masters().await;
        // --timeout counts from here: the masters' check (a quorum only)
        // comes out of it, leaving at least a moment for a wait to stay a
        // wait; and out of --connect-timeout for --timeout 0's one attempt.
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
                });
            }
            WaitOutcome::TimedOut {
                last,
                ever_reachable,
            } => return Err(not_acquired(plan, last, ever_reachable)),
        };
        tracing::info!(
            key = %escape_controls(&plan.place.key),
            fencing_token = grant.fencing,
            "lock acquired"
        );
        Ok(Run::new(locker, grant, plan.job(), None))
    }

    /// Spawn the command with the lock's environment, renew while it runs,
    /// supervise it, release (or hold for `--min-hold`); then hand the
    /// locker back. The error is a failure to start the command (nothing
    /// ran, the lock was given back).
    pub(crate) async fn execute(self, signals: &mut Signals) -> (Locker, Result<RunEnd, Failure>) {
        let mut child = match self.spawn() {
            Ok(c) => c,
            Err(f) => {
                let Run {
                    mut locker, grant, ..
                } = self;
                // Nothing ran: give the lock back at once, whatever
                // --min-hold says.
                if let Err(e) = locker.release(&grant.token).await {
                    tracing::error!(error = %e, "could not release the lock; it expires by itself");
                }
                return (locker, Err(f));
            }
        };
        tracing::debug!(pid = child.pid(), "command started");

        let started = SystemTime::now();
        let Run {
            locker,
            grant,
            job,
            tick,
        } = self;
        let mut keeper = Keeper::start(locker, &grant);
        // Returns only once the command's whole group is gone.
        let mut end = supervise(&mut child, job.lease, keeper.state(), signals).await;
        child.restore_terminal();
        let mut locker = keeper.stop().await;
        let run = RunRecord {
            program: job.program,
            fencing: grant.fencing,
            started,
            tick,
        };
        let min_hold = job.lease.min_hold;
        if let Some(why) = release_or_hold(&mut locker, &grant, min_hold, &end, &run).await {
            end = end.lost_at_release(why);
            // Recorded as it ended: the release did not record it.
            locker.record(&run.entry(&end), grant.fencing).await;
        }
        (locker, Ok(end))
    }

    /// Start the command: the guardian's deadline is set before it exists.
    fn spawn(&self) -> Result<child::Child, Failure> {
        let fencing = self.grant.fencing.to_string();
        let mut env = vec![
            ("REDLOCK_KEY", self.job.key),
            ("REDLOCK_TOKEN", self.grant.token.as_str()),
            ("REDLOCK_FENCING_TOKEN", fencing.as_str()),
        ];
        if let Some(tick) = self.tick {
            env.push(("REDLOCK_TICK", tick));
        }
        child::become_subreaper();
        guardian::prepare(self.job.lease.kill_at(self.grant.valid_until))
            .map_err(|e| Failure::Internal(format!("the guardian is gone ({e}); nothing was run")))
            .and_then(|()| child::spawn(self.job.program, &env))
    }
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

/// What the run history says of one finished run.
struct RunRecord<'a> {
    program: &'a Program,
    fencing: u64,
    started: SystemTime,
    /// schedule: the tick (RFC 3339).
    tick: Option<&'a str>,
}

impl RunRecord<'_> {
    /// The history entry (JSON) for a run that ended with `end`: its
    /// exit code and [`RunEnd::history_kind`].
    fn entry(&self, end: &RunEnd) -> String {
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
async fn release_or_hold(
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
