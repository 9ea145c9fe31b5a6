//! `redlock-run schedule`: a tick clock plus a per-tick claim, so that a
//! fleet running the same line behaves like one scheduler.
//!
//! Every instance wakes at each tick (a wall-clock multiple of `--every`
//! since the epoch, or a `--cron` time) and makes one attempt that takes the
//! lock *and* claims the tick in a single script. The claim is a
//! max-register of the last tick that ran, so a tick runs at most once
//! however far apart the instances' clocks are, and an instance whose clock
//! is behind cannot re-run a tick that an instance ahead already ran. The
//! run itself is run mode's code path (`run::Run`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use futures_util::StreamExt;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cli::ScheduleArgs;
use crate::config::{Lease, Place, Program};
use crate::exit::{self, Failure};
use crate::lock::{Attempt, Locker, Mode, Probe};
use crate::outcome::{Asked, RunEnd, ScheduleEnd};
use crate::run::{Job, Run, holder_json};
use crate::signals::{Caught, Signals};

/// When ticks fall.
#[derive(Debug, Clone)]
pub enum When {
    Every(Duration),
    Cron {
        cron: Box<croner::Cron>,
        tz: TimeZone,
    },
}

/// Shortest --every we accept.
const MIN_EVERY: Duration = Duration::from_millis(100);

impl When {
    pub fn from_args(a: &ScheduleArgs) -> Result<Self, Failure> {
        match (&a.every, &a.cron) {
            (Some(_), None) if a.tz.is_some() => Err(Failure::Usage(
                "--tz applies to --cron only (--every ticks are counted from the Unix epoch)"
                    .into(),
            )),
            (Some(every), None) => {
                crate::config::at_most_max("--every", *every)?;
                if *every < MIN_EVERY {
                    return Err(Failure::Usage(format!(
                        "--every {} is too short: the minimum is {}",
                        humantime::format_duration(*every),
                        humantime::format_duration(MIN_EVERY)
                    )));
                }
                if every.subsec_nanos() % 1_000_000 != 0 {
                    return Err(Failure::Usage(
                        "--every must be a whole number of milliseconds".into(),
                    ));
                }
                Ok(When::Every(*every))
            }
            (None, Some(expr)) => {
                let cron = croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Optional)
                    .year(croner::parser::Year::Disallowed)
                    .build()
                    .parse(expr)
                    .map_err(|e| Failure::Usage(format!("invalid --cron {expr:?}: {e}")))?;
                let tz = match &a.tz {
                    None => TimeZone::UTC,
                    Some(name) => TimeZone::get(name)
                        .map_err(|e| Failure::Usage(format!("unknown --tz {name:?}: {e}")))?,
                };
                let when = When::Cron {
                    cron: Box::new(cron),
                    tz,
                };
                if when.next_after(now_ms()).is_none() {
                    return Err(Failure::Usage(format!(
                        "invalid --cron {expr:?}: it never fires (no future time matches)"
                    )));
                }
                Ok(when)
            }
            _ => Err(Failure::Usage(
                "give exactly one of --every and --cron".into(),
            )),
        }
    }

    /// The first tick strictly after `now_ms` (ms since the Unix epoch).
    pub(crate) fn next_after(&self, now_ms: i64) -> Option<i64> {
        match self {
            When::Every(every) => Some(next_multiple(now_ms, every.as_millis() as i64)),
            When::Cron { cron, tz } => {
                let now = Timestamp::from_millisecond(now_ms)
                    .ok()?
                    .to_zoned(tz.clone());
                let next = cron.find_next_occurrence(&now, false).ok()?;
                Some(next.timestamp().as_millisecond())
            }
        }
    }

    /// The interval that starts at `tick`: `--every`, or the distance to
    /// the next cron time (at least 1 ms).
    pub(crate) fn interval_at(&self, tick_ms: i64) -> Duration {
        match self {
            When::Every(every) => *every,
            When::Cron { .. } => {
                let next = self.next_after(tick_ms).unwrap_or(tick_ms + 1);
                Duration::from_millis((next - tick_ms).max(1) as u64)
            }
        }
    }

    /// RFC 3339 UTC; whole seconds unless the interval has a fraction.
    pub(crate) fn format_tick(&self, tick_ms: i64) -> String {
        let ts = Timestamp::from_millisecond(tick_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        match self {
            When::Every(e) if e.subsec_millis() != 0 => format!("{ts:.3}"),
            _ => format!("{ts:.0}"),
        }
    }
}

/// The smallest multiple of `every` strictly greater than `now`.
pub(crate) fn next_multiple(now: i64, every: i64) -> i64 {
    (now.div_euclid(every) + 1) * every
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The next tick from now, as logged (`none` when the cron expression has
/// no future time).
fn next_tick(when: &When) -> String {
    when.next_after(now_ms())
        .map_or("none".into(), |t| when.format_tick(t))
}

/// Sleep until the wall clock reads `tick_ms` (re-checked after each wake,
/// so a clock step in either direction is followed).
async fn sleep_until_wall(tick_ms: i64) {
    loop {
        let now = now_ms();
        if now >= tick_ms {
            return;
        }
        let left = Duration::from_millis((tick_ms - now) as u64);
        tokio::time::sleep(left.min(Duration::from_secs(60))).await;
    }
}

/// Everything schedule mode needs, checked.
#[derive(Debug, Clone)]
pub(crate) struct SchedulePlan {
    pub(crate) place: Place,
    pub(crate) lease: Lease,
    pub(crate) program: Program,
    pub(crate) when: When,
    /// `--connect-timeout`: the longest one master may take to answer an
    /// attempt (a tick's attempt also gets at most a tenth of the interval).
    pub(crate) connect_timeout: Duration,
}

/// Loop over ticks until a signal stops the schedule.
pub(crate) async fn schedule(plan: SchedulePlan) -> Result<ScheduleEnd> {
    let mut signals = Signals::install()?;
    let mut locker = Locker::new(&plan.place.endpoints, &plan.place.key, plan.lease);
    let mut reach = match preflight(&mut locker, &plan.place.key, &mut signals).await? {
        Ok(reach) => reach,
        Err(sig) => return Ok(ScheduleEnd::Stopped(sig)),
    };
    locker.check_masters().await;
    // The first tick, announced: a daily --cron is not silent for hours.
    let mut announced = plan.when.next_after(now_ms());
    tracing::info!(
        key = %crate::display::escape_controls(&plan.place.key),
        next_tick = %announced.map_or("none".into(), |t| plan.when.format_tick(t)),
        "schedule started"
    );
    let mut busy_until: Option<i64> = None;
    loop {
        // Checked before starting; only a clock far in the future gets here.
        let Some(tick) = announced.take().or_else(|| plan.when.next_after(now_ms())) else {
            tracing::error!("the cron expression has no future time; stopping");
            return Ok(ScheduleEnd::NoFutureTick);
        };
        if let Err(sig) = or_stop(sleep_until_wall(tick), &mut signals).await {
            return Ok(ScheduleEnd::Stopped(sig));
        }
        // Ticks that came while our own previous run held the lock.
        if let Some(from) = busy_until.take() {
            log_missed(&plan.when, from, tick);
        }
        let tick_str = plan.when.format_tick(tick);
        let late_ms = now_ms() - tick;
        let took = take_tick(
            &mut locker,
            &plan,
            tick,
            &tick_str,
            &mut signals,
            &mut reach,
        );
        let grant = match took.await {
            Took::Run(g) => g,
            Took::Skip => continue,
            Took::Stop(sig) => return Ok(ScheduleEnd::Stopped(sig)),
            Took::Refused(f) => return Err(f.into()),
        };
        let started = std::time::Instant::now();
        let fencing = grant.fencing;
        let job = Job {
            key: &plan.place.key,
            lease: &plan.lease,
            program: &plan.program,
        };
        let run = Run::new(locker, grant, job, Some(&tick_str));
        let (back, end) = run.execute(&mut signals).await;
        locker = back;
        let ran = Ran {
            tick: &tick_str,
            fencing,
            duration_ms: started.elapsed().as_millis() as u64,
            late_ms,
        };
        busy_until = Some(tick);
        let end = match end {
            Ok(end) => end,
            Err(f) => {
                tracing::error!(tick = %tick_str, next_tick = %next_tick(&plan.when), "{f}");
                continue;
            }
        };
        if let Some(stopped) = after_run(&plan.when, &end, &ran)? {
            return Ok(stopped);
        }
    }
}

/// One tick's run, for its log line.
struct Ran<'a> {
    tick: &'a str,
    fencing: u64,
    duration_ms: u64,
    /// How long after the tick the attempt began.
    late_ms: i64,
}

/// Log how a tick's run ended. Some: the schedule was asked to stop (a
/// signal during the run); Err: the supervisor failed, which ends it.
fn after_run(when: &When, end: &RunEnd, ran: &Ran) -> Result<Option<ScheduleEnd>> {
    let Ran {
        tick,
        fencing,
        duration_ms,
        late_ms,
    } = *ran;
    let next = next_tick(when);
    match (end, end.failure()) {
        // The command's group was stopped and the lock released; the
        // schedule does not go on without a working supervisor.
        (RunEnd::Internal { .. }, Some(f)) => {
            tracing::error!(tick = %tick, fencing_token = fencing, "{f}; stopping the schedule");
            return Err(f.into());
        }
        // The run's status is 70, as in run mode; the command's own
        // (usually the signal that stopped it) goes alongside.
        (_, Some(f)) => tracing::error!(
            tick = %tick, fencing_token = fencing,
            exit_status = end.code(),
            command_status = %end.command_code().map_or("-".into(), |c| c.to_string()),
            duration_ms, late_ms, reason = %f, next_tick = %next, "ran; lock lost"
        ),
        (_, None) if end.code() == 0 => tracing::info!(
            tick = %tick, fencing_token = fencing, exit_status = 0,
            duration_ms, late_ms, next_tick = %next, "ran"
        ),
        (_, None) => tracing::warn!(
            tick = %tick, fencing_token = fencing, exit_status = end.code(),
            duration_ms, late_ms, next_tick = %next, "ran; command failed"
        ),
    }
    if end.asked() == Asked::Nothing {
        return Ok(None);
    }
    tracing::info!("stopping the schedule");
    let sig = match end.asked() {
        Asked::Stop(sig) => Some(sig),
        _ => None,
    };
    Ok(Some(ScheduleEnd::Stopped(sig)))
}

/// How often, until the masters answered once, a skipped tick is logged.
const UNREACHABLE_LINE_EVERY: Duration = Duration::from_secs(60);

/// Whether the masters have let us in yet, and when a tick skipped
/// because they did not answer was last logged.
#[derive(Debug, Default)]
struct Reach {
    /// A probe or an attempt got an answer about the lock.
    verified: bool,
    last_line: Option<std::time::Instant>,
}

impl Reach {
    /// Whether a tick skipped for want of an answer is logged now: every
    /// one once the masters answered (an outage), else one a minute.
    fn log_skip(&mut self) -> bool {
        if self.verified {
            return true;
        }
        let due = self
            .last_line
            .is_none_or(|t| t.elapsed() >= UNREACHABLE_LINE_EVERY);
        if due {
            self.last_line = Some(std::time::Instant::now());
        }
        due
    }
}

/// Before the first tick: make sure the masters let us in. A refusal that
/// no retry can fix (a password, an ACL, a bad database) ends the
/// schedule at once with exit 69, so that a service manager shows the
/// failure. Masters that do not answer are left to the ticks, which keep
/// trying (and refuse the same way when the masters first answer), with a
/// line a minute until then. Err: the signal, when one stops the schedule
/// meanwhile.
async fn preflight(
    locker: &mut Locker,
    key: &str,
    signals: &mut Signals,
) -> Result<Result<Reach, Option<Caught>>, Failure> {
    let timeout = locker.io_timeout().min(Duration::from_secs(2));
    let probe = match or_stop(locker.check_access(timeout), signals).await {
        Ok(p) => p,
        Err(sig) => return Ok(Err(sig)),
    };
    match probe {
        Probe::Ready => Ok(Ok(Reach {
            verified: true,
            last_line: None,
        })),
        Probe::Refused(why) => Err(refused(key, &why)),
        Probe::Unreachable(why) => {
            tracing::warn!(error = %why, "Redis does not answer yet; each tick tries again");
            Ok(Ok(Reach::default()))
        }
    }
}

/// A refusal no retry can fix, before the masters ever let us in.
fn refused(key: &str, why: &str) -> Failure {
    Failure::Unavailable(format!("cannot schedule under lock {key:?}: {why}"))
}

/// What became of one tick's attempt to take the lock.
enum Took {
    Run(crate::lock::Grant),
    /// Skipped (logged by `take_tick`).
    Skip,
    /// A signal stops the schedule.
    Stop(Option<Caught>),
    /// The schedule cannot go on (the key is used with another --limit, or
    /// the masters refused us before they ever let us in).
    Refused(Failure),
}

/// Try to take the lock for `tick`.
///
/// An attempt that finds the tick claimed by another instance's attempt
/// still in flight tries again (after a random pause that grows each round)
/// while less than half the interval has passed: that attempt may fail and
/// be undone, and the tick must then still run somewhere.
async fn take_tick(
    locker: &mut Locker,
    plan: &SchedulePlan,
    tick: i64,
    tick_str: &str,
    signals: &mut Signals,
    reach: &mut Reach,
) -> Took {
    let interval = plan.when.interval_at(tick);
    let bound_ms = (interval / 2).as_millis() as u64;
    // A tick's attempt waits for masters at most a tenth of the interval.
    locker.cap_node_timeout((interval / 10).min(plan.connect_timeout));
    let retry_until = tick + bound_ms as i64;
    let mut round: u32 = 0;
    loop {
        let began = std::time::Instant::now();
        let token = Locker::new_token();
        let mode = Mode::Tick {
            tick: tick as u64,
            bound_ms,
        };
        let attempt = match attempt_tick(locker, &plan.program, &token, mode, signals).await {
            Ok(a) => a,
            Err(sig) => return Took::Stop(sig),
        };
        round += 1;
        let unit = began.elapsed().max(Duration::from_millis(2));
        let left = Duration::from_millis((retry_until - now_ms()).max(0) as u64);
        if !matches!(attempt, Attempt::Unavailable { .. }) {
            reach.verified = true;
        }
        match attempt {
            Attempt::Held {
                same_tick: true,
                holder,
                ..
            } if left > unit => {
                let pause = retry_pause(&holder, &token, round, unit, left);
                tracing::debug!(tick = %tick_str, "tick claimed by an attempt in flight; trying again");
                if let Err(sig) = or_stop(tokio::time::sleep(pause), signals).await {
                    return Took::Stop(sig);
                }
            }
            attempt => return settle(attempt, plan, tick_str, bound_ms, reach),
        }
    }
}

/// One attempt to take the lock and claim the tick (`mode`). Err: a
/// signal stopped it mid-attempt; it may have landed, so it is undone, and
/// its claim with it, so the tick is not lost to the others.
async fn attempt_tick(
    locker: &mut Locker,
    program: &Program,
    token: &str,
    mode: Mode<'_>,
    signals: &mut Signals,
) -> Result<Attempt, Option<Caught>> {
    let holder = holder_json(token, program);
    match or_stop(locker.try_acquire_as(token, &holder, mode), signals).await {
        Ok(a) => Ok(a),
        Err(sig) => {
            locker.undo(token).await;
            Err(sig)
        }
    }
}

/// The pause before trying again after `holder`'s attempt for the same
/// tick split the vote with ours (`token`, in its `round`). The one with
/// the greater token yields (sits out a few attempts' time), the other
/// tries again almost at once and so finds the masters free. In units of
/// what an attempt takes here, with jitter, and never past the point where
/// one more attempt fits in what is `left`.
fn retry_pause(
    holder: &crate::lock::Holder,
    token: &str,
    round: u32,
    unit: Duration,
    left: Duration,
) -> Duration {
    let yield_to = holder.token.as_str() < token;
    let units = if yield_to {
        2.0 + f64::from(round.min(4)) * rand_unit()
    } else {
        0.25 * rand_unit()
    };
    unit.mul_f64(units).min(left.saturating_sub(unit))
}

/// What an attempt that is not tried again comes to: the run, a skipped
/// tick (logged here), or the end of the schedule.
fn settle(
    attempt: Attempt,
    plan: &SchedulePlan,
    tick_str: &str,
    bound_ms: u64,
    reach: &mut Reach,
) -> Took {
    match attempt {
        Attempt::Acquired(g) => Took::Run(g),
        Attempt::Held { holder, .. } => {
            tracing::info!(tick = %tick_str, holder = %holder, next_tick = %next_tick(&plan.when), "skipped: lock held");
            Took::Skip
        }
        Attempt::AlreadyRan { .. } => {
            tracing::info!(tick = %tick_str, next_tick = %next_tick(&plan.when), "skipped: already ran elsewhere");
            Took::Skip
        }
        Attempt::ClockAhead { skew_ms } => {
            tracing::error!(
                tick = %tick_str, skew_ms, bound_ms, next_tick = %next_tick(&plan.when),
                "skipped: this host's clock is ahead of Redis by more than half the \
                 interval, so it cannot claim ticks; fix the clock (NTP)"
            );
            Took::Skip
        }
        Attempt::Mismatch { stored } => Took::Refused(Failure::limit_mismatch(
            &plan.place.key,
            plan.lease.limit,
            stored,
        )),
        Attempt::Unavailable { reason, permanent } if permanent && !reach.verified => {
            Took::Refused(refused(&plan.place.key, &reason))
        }
        Attempt::Unavailable { reason, .. } => {
            let until = if reach.verified {
                ""
            } else {
                " (a line a minute until it answers)"
            };
            if reach.log_skip() {
                tracing::error!(
                    tick = %tick_str, error = %exit::advised(&reason),
                    next_tick = %next_tick(&plan.when), "skipped: Redis unavailable{until}"
                );
            } else {
                tracing::debug!(tick = %tick_str, error = %reason, "skipped: Redis unavailable");
            }
            Took::Skip
        }
    }
}

/// A number in [0, 1) for jitter (no need for a good generator).
fn rand_unit() -> f64 {
    let r = uuid::Uuid::new_v4().as_u128() as u64;
    (r >> 11) as f64 / (1u64 << 53) as f64
}

/// Wait for `fut` unless a signal that stops the schedule comes first
/// (then `Err`, with the signal; see [`ScheduleEnd::Stopped`]): SIGINT, SIGTERM, or
/// any signal that is not forwarded (SIGALRM, ...). The other forwarded
/// signals (SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) go to the command while one
/// runs and do not stop the schedule; between runs there is nobody to
/// forward them to, so they are logged and ignored, for the same result.
async fn or_stop<F: Future>(fut: F, signals: &mut Signals) -> Result<F::Output, Option<Caught>> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Ok(out),
            sig = signals.next() => match sig {
                Some(s) if !s.is_interrupt() && !s.stops() => {
                    tracing::info!(signal = %s, "no command is running: signal ignored");
                }
                s => {
                    tracing::info!(signal = s.map_or("?".into(), |s| s.to_string()), "stopping the schedule");
                    return Err(s);
                }
            },
        }
    }
}

/// Log, as skipped, the ticks after `from` and before `until` that fell
/// while this instance's own run held the lock.
fn log_missed(when: &When, from: i64, until: i64) {
    let mut t = from;
    let mut shown = 0;
    let mut more = 0;
    while let Some(next) = when.next_after(t) {
        if next >= until {
            break;
        }
        if shown < 10 {
            tracing::info!(
                tick = %when.format_tick(next),
                holder = "this instance",
                "skipped: lock held"
            );
            shown += 1;
        } else {
            more += 1;
        }
        t = next;
    }
    if more > 0 {
        tracing::info!(
            count = more,
            "skipped more ticks while the run held the lock"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_multiples_of_the_interval_since_the_epoch() {
        assert_eq!(next_multiple(0, 10_000), 10_000);
        assert_eq!(next_multiple(9_999, 10_000), 10_000);
        assert_eq!(next_multiple(10_000, 10_000), 20_000);
        assert_eq!(next_multiple(1_764_140_405_123, 10_000), 1_764_140_410_000);
    }

    #[test]
    fn instances_skewed_by_less_than_half_an_interval_agree_on_tick_ids() {
        // Each instance fires at its own boundary; the tick id is the
        // boundary, not the (skewed) time it was observed at.
        let every = When::Every(Duration::from_secs(2));
        let true_now = 1_000_000_001_000;
        let ahead = every.next_after(true_now + 600).unwrap();
        let behind = every.next_after(true_now - 400).unwrap();
        assert_eq!(ahead, behind);
        assert_eq!(ahead % 2000, 0);
    }

    #[test]
    fn tick_format_is_rfc3339_utc() {
        let w = When::Every(Duration::from_secs(10));
        assert_eq!(w.format_tick(1_764_140_410_000), "2025-11-26T07:00:10Z");
        let w = When::Every(Duration::from_millis(1500));
        assert_eq!(w.format_tick(1_764_140_410_500), "2025-11-26T07:00:10.500Z");
    }

    fn cron(expr: &str, tz: Option<&str>) -> When {
        When::from_args(&cron_args(expr, tz)).unwrap()
    }

    fn cron_args(expr: &str, tz: Option<&str>) -> ScheduleArgs {
        ScheduleArgs {
            target: crate::cli::Target {
                key: Some("k".into()),
                redis: vec![],
                redis_file: None,
            },
            every: None,
            cron: Some(expr.into()),
            tz: tz.map(Into::into),
            lease: crate::cli::LeaseArgs {
                ttl: Duration::from_secs(30),
                refresh: None,
                min_hold: Duration::ZERO,
                kill_after: None,
                limit: 1,
            },
            connect: crate::cli::ConnectArgs {
                connect_timeout: Duration::from_secs(2),
            },
            replicas: crate::cli::ReplicaArgs { wait_replicas: 0 },
            command: crate::cli::CommandArgs {
                shell: None,
                command: vec![],
                label: None,
                record_args: false,
            },
            log: crate::cli::LogArgs {
                verbose: 0,
                quiet: 0,
                log_format: crate::cli::LogFormat::Text,
            },
        }
    }

    #[test]
    fn cron_with_seconds_and_five_fields() {
        let every10 = cron("*/10 * * * * *", None);
        assert_eq!(
            every10.next_after(1_764_140_405_123),
            Some(1_764_140_410_000)
        );
        let hourly = cron("0 * * * *", None);
        // 2025-11-26T07:00:10Z -> 08:00:00Z
        assert_eq!(
            hourly.next_after(1_764_140_410_000),
            Some(1_764_144_000_000)
        );
    }

    #[test]
    fn cron_refuses_a_year_field_and_a_time_that_never_comes() {
        for expr in ["0 0 0 1 1 * 2099", "0 0 0 30 2 *", "0 0 31 4 *"] {
            let err = When::from_args(&cron_args(expr, None)).unwrap_err();
            assert!(matches!(err, Failure::Usage(_)), "{expr}: {err}");
        }
    }

    #[test]
    fn cron_in_a_time_zone() {
        // 09:00 in Paris (UTC+1 in November) is 08:00 UTC.
        let paris = cron("0 0 9 * * *", Some("Europe/Paris"));
        let t = paris.next_after(1_764_140_410_000).unwrap();
        assert_eq!(t, 1_764_144_000_000);
    }
}
