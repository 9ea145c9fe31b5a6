//! Fault injectors. Each applies a real fault (a proxy mode, a signal to a
//! process we started, a kill and restart), holds it for its length, heals
//! it, and logs an `Event` that the checker and the reports use. Sleeps in
//! here are only ever the length of a fault.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::harness::World;
use super::mono_ns;
use super::section::Section;
use crate::support::proxy::Mode;
use crate::support::{alive, guardian_of, proc_state};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Blackhole,
    Delay,
    Reset,
    RedisPause,
    RestartEmpty,
    RestartPersistent,
    HolderKill,
    HolderFreeze,
    MasterDown,
    MinorityPartition,
    RollingRestart,
    LostReply,
    RrStall,
    Oom,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Blackhole,
        Kind::Delay,
        Kind::Reset,
        Kind::RedisPause,
        Kind::RestartEmpty,
        Kind::RestartPersistent,
        Kind::HolderKill,
        Kind::HolderFreeze,
        Kind::MasterDown,
        Kind::MinorityPartition,
        Kind::RollingRestart,
        Kind::LostReply,
        Kind::RrStall,
        Kind::Oom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Blackhole => "one contender partitioned (proxy blackhole)",
            Kind::Delay => "one contender's link delayed (proxy delay)",
            Kind::Reset => "one contender's connections reset (proxy RST)",
            Kind::LostReply => "one contender's next reply lost (proxy RST after Redis ran it)",
            Kind::RrStall => "holder's redlock-run alone SIGSTOPped past its lease",
            Kind::Oom => "redis-server answering OOM (maxmemory 1, noeviction)",
            Kind::RedisPause => "redis-server SIGSTOP … SIGCONT",
            Kind::RestartEmpty => "redis-server kill -9 + restart, no persistence",
            Kind::RestartPersistent => "redis-server kill -9 + restart, AOF fsync always",
            Kind::HolderKill => "holder's redlock-run SIGKILLed",
            Kind::HolderFreeze => "holder SIGSTOPped past its TTL",
            Kind::MasterDown => "quorum: one master down",
            Kind::MinorityPartition => "quorum: one master partitioned from all",
            Kind::RollingRestart => "quorum: masters restarted in turn",
        }
    }

    /// Faults during which a master answers nobody, the sampler included.
    pub fn blinds_sampler(self) -> bool {
        matches!(
            self,
            Kind::RedisPause
                | Kind::RestartEmpty
                | Kind::RestartPersistent
                | Kind::MasterDown
                | Kind::RollingRestart
        )
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub start: u64,
    pub end: u64,
    /// The run it was aimed at (holder faults).
    pub run: Option<u64>,
    pub contender: Option<usize>,
    /// RestartEmpty: the data epoch that began (the fencing counter
    /// restarts, and the resource with it).
    pub epoch: Option<u64>,
    /// Restarts with persistence: whether the held lock came back.
    pub survived: Option<bool>,
    /// The master it hit (None: every master, or none: a contender's or a
    /// run's fault).
    pub master: Option<usize>,
    /// RestartEmpty: the key's value at the moment of the kill, read while
    /// `CLIENT PAUSE WRITE` held every write back (so exact: nothing could
    /// be granted between the read and the kill). The only section the old
    /// incarnation can have granted and whose command may start after the
    /// epoch changed is the one holding this token. None: not observed.
    pub at_kill: Option<Option<String>>,
}

impl Event {
    /// A fault that began at `start` and ends now.
    fn new(kind: Kind, start: u64) -> Self {
        Self::between(kind, start, mono_ns())
    }

    /// A fault from `start` to `end`, aimed at nothing in particular yet.
    pub fn between(kind: Kind, start: u64, end: u64) -> Self {
        Event {
            kind,
            start,
            end,
            run: None,
            contender: None,
            epoch: None,
            survived: None,
            master: None,
            at_kill: None,
        }
    }
}

/// The run whose section is running right now.
#[derive(Debug, Clone, Copy)]
pub struct Holder {
    pub run: u64,
    pub rr_pid: i32,
    pub pid: i32,
    pub contender: usize,
    pub long: bool,
    pub term_ignoring: bool,
    /// CLOCK_MONOTONIC ns before which its section cannot end (its start
    /// plus the time it sleeps).
    pub ends_no_sooner: u64,
}

/// What a restart of one master saw.
#[derive(Debug, Clone)]
pub struct Restarted {
    /// With persistence, whether a lock held at the kill was there again
    /// after the restart (None: nothing held with enough lease left).
    pub survived: Option<bool>,
    /// The key's value and PTTL at the kill (None: not observed).
    pub at_kill: Option<Option<String>>,
    pub pttl_at_kill: Option<i64>,
    /// Just before the read at the kill (writes held back from then on).
    pub read_at: u64,
}

/// Wait up to `limit` for `pid` to be stopped ('T'); false if it never
/// was (or is gone).
fn wait_stopped(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match proc_state(pid) {
            Some('T') => return true,
            None | Some('Z' | 'X') => return false,
            _ if Instant::now() >= deadline => return false,
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn signal(pid: i32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid), sig);
}

impl World {
    fn log(&self, e: Event) {
        self.sh.events.lock().unwrap().push(e);
    }

    /// The current holder, if exactly one section is running (waits up to
    /// `limit` for one that `want` accepts). Two running at once is an
    /// overlap the checker must see as it is: a fault aimed at one of them
    /// (a freeze, above all, which excuses overlaps that begin after it)
    /// could hide it, so none is picked then.
    pub fn holder(&self, limit: Duration, want: impl Fn(&Holder) -> bool) -> Option<Holder> {
        let deadline = Instant::now() + limit;
        loop {
            let live: Vec<_> = self.sh.live.lock().unwrap().clone().into_iter().collect();
            let running: Vec<Holder> = live
                .into_iter()
                .filter_map(|(run, l)| {
                    let s = Section::read(&self.sh.dir, run)?;
                    (!s.ended() && alive(s.pid)).then_some(Holder {
                        run,
                        rr_pid: l.rr_pid,
                        pid: s.pid,
                        contender: l.contender,
                        long: l.long,
                        term_ignoring: l.term_ignoring,
                        ends_no_sooner: s.t0 + l.section_us * 1000,
                    })
                })
                .collect();
            if let [h] = running.as_slice() {
                if want(h) {
                    return Some(*h);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The holder, once one that `want` accepts runs whose section cannot
    /// end within a TTL + 200 ms from now (enough to still be sure of a
    /// lease lost once a fault is in place); None if none came by
    /// `deadline`.
    fn holder_past_its_lease(
        &self,
        deadline: Instant,
        want: impl Fn(&Holder) -> bool,
    ) -> Option<Holder> {
        let room = self.p.ttl.as_nanos() as u64 + 200_000_000;
        let left = deadline.saturating_duration_since(Instant::now());
        self.holder(left, |h| want(h) && h.ends_no_sooner > mono_ns() + room)
    }

    /// Wait (a few seconds at most) for a long section to be running,
    /// preferring one that ignores SIGTERM when `term` is set.
    pub fn long_holder(&self, term: bool) -> Option<Holder> {
        let limit = Duration::from_secs(4);
        if term {
            if let Some(h) = self.holder(limit, |h| h.long && h.term_ignoring) {
                return Some(h);
            }
        }
        self.holder(limit, |h| h.long)
    }

    /// Cut contender `c` off from every master (or slow or reset its
    /// links) for `d`: a one-sided partition, the others are unaffected.
    pub fn proxy_fault(&self, c: usize, mode: Mode, d: Duration, run: Option<u64>) {
        let kind = match mode {
            Mode::Blackhole | Mode::HoldReplies => Kind::Blackhole,
            Mode::Delay(_) => Kind::Delay,
            Mode::Reset => Kind::Reset,
            Mode::LoseNextReply => Kind::LostReply,
            Mode::Pass => return,
        };
        let start = mono_ns();
        for row in &self.proxies {
            row[c].set_mode(mode);
        }
        std::thread::sleep(d);
        for row in &self.proxies {
            row[c].set_mode(Mode::Pass);
        }
        self.log(Event {
            contender: Some(c),
            run,
            ..Event::new(kind, start)
        });
    }

    /// Slow down the links of several contenders at once (mostly waiters)
    /// for `d`, then heal them all at the same moment: requests held on
    /// different connections are then delivered in no particular order.
    pub fn delay_flap(&self, cs: &[usize], delay: Duration, d: Duration) {
        let start = mono_ns();
        for &c in cs {
            for row in &self.proxies {
                row[c].set_mode(Mode::Delay(delay));
            }
        }
        std::thread::sleep(d);
        for &c in cs {
            for row in &self.proxies {
                row[c].set_mode(Mode::Pass);
            }
        }
        for &c in cs {
            self.log(Event {
                contender: Some(c),
                ..Event::new(Kind::Delay, start)
            });
        }
    }

    /// The same, aimed at whoever holds the lock now (a long section if
    /// one comes within a few seconds, one that ignores SIGTERM if `term`).
    pub fn proxy_fault_on_holder(&self, mode: Mode, d: Duration, term: bool) -> bool {
        let h = self
            .long_holder(term)
            .or_else(|| self.holder(Duration::from_secs(1), |_| true));
        match h {
            Some(h) => {
                self.proxy_fault(h.contender, mode, d, Some(h.run));
                true
            }
            None => false,
        }
    }

    /// A lease certainly lost: cut the holder off from every master at a
    /// moment its section still has more than a TTL to run, and keep it
    /// cut off for longer than a TTL. Its last renewal that got through
    /// was sent before the cut, so its lease is valid until that moment
    /// plus the TTL at most; its command cannot end by then, and no
    /// renewal can land: redlock-run must stop it and exit 70 (or the
    /// checker reports a violation). A holder seen too late in its section
    /// once the cut is in place is let go (the fault is still logged) and
    /// the next one is tried, until `limit` has passed; false if none came.
    /// Only holders that `want` accepts are cut off.
    pub fn cut_off_a_holder_past_its_lease(
        &self,
        limit: Duration,
        want: impl Fn(&Holder) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        let ttl = self.p.ttl.as_nanos() as u64;
        while Instant::now() < deadline {
            let Some(h) = self.holder_past_its_lease(deadline, &want) else {
                return false;
            };
            let start = mono_ns();
            for row in &self.proxies {
                row[h.contender].set_mode(Mode::Blackhole);
            }
            // Measured after every link is cut: a renewal that slipped
            // through one of them meanwhile was sent before this.
            let certain = h.ends_no_sooner > mono_ns() + ttl;
            if certain {
                std::thread::sleep(self.p.ttl + Duration::from_millis(300));
            }
            for row in &self.proxies {
                row[h.contender].set_mode(Mode::Pass);
            }
            self.log(Event {
                contender: Some(h.contender),
                run: Some(h.run),
                ..Event::new(Kind::Blackhole, start)
            });
            if certain {
                return true;
            }
        }
        false
    }

    /// A lease certainly lost to a frozen Redis (one master): SIGSTOP it
    /// while the holder's section has more than a TTL to run, and keep it
    /// stopped for a TTL + 300 ms. Every renewal that got through was
    /// processed before the stop took effect, so the lease is valid until
    /// then + TTL at most; the command cannot end by then and no renewal
    /// can land: redlock-run must stop it and exit 70 (or the checker
    /// reports a violation). And the check of that stop is certain too:
    /// the freeze blinds the sampler, so it is made only right after the
    /// sampler has seen a renewal land (PTTL within refresh / 2 of the
    /// TTL), and no later than refresh / 2 after that sample was sent:
    /// redlock-run sends its next renewal a --refresh after the last one
    /// completed, so none landed unseen and the samples bound the lease
    /// from below. A holder that does not fit is let go (the fault is
    /// still logged) and the next one tried, until `limit`.
    pub fn freeze_redis_past_a_holders_lease(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (ttl, half) = (
            self.p.ttl.as_nanos() as u64,
            self.p.refresh().as_nanos() as u64 / 2,
        );
        while Instant::now() < deadline {
            let Some(h) = self.holder_past_its_lease(deadline, |_| true) else {
                return false;
            };
            let Some(token) = Section::read(&self.sh.dir, h.run).map(|s| s.token) else {
                continue;
            };
            // The freshest sample of master 0, once it shows a renewal
            // of this holder's that just landed.
            let fresh = |w: &World| {
                let x = w.sh.samples[0].lock().unwrap().last().cloned()?;
                let renewed = x.value.as_deref() == Some(token.as_str())
                    && x.pttl as u64 * 1_000_000 + half >= ttl;
                renewed.then_some(x.t_send)
            };
            let until = (Instant::now() + self.p.ttl).min(deadline);
            let mut sent = None;
            while sent.is_none() && Instant::now() < until {
                sent = fresh(self);
                if sent.is_none() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let Some(sent) = sent else { continue };
            let start = mono_ns();
            self.masters[0].pause();
            let pid = self.masters[0].pid().as_raw();
            assert!(
                wait_stopped(pid, Duration::from_secs(2)),
                "redis-server {pid} did not stop on SIGSTOP"
            );
            let now = mono_ns();
            let certain = now < sent + half && h.ends_no_sooner > now + ttl;
            if certain {
                std::thread::sleep(self.p.ttl + Duration::from_millis(300));
            }
            self.masters[0].resume();
            self.log(Event {
                master: Some(0),
                ..Event::new(Kind::RedisPause, start)
            });
            if certain {
                return true;
            }
        }
        false
    }

    /// Restart master 0 (kill -9) under a holder whose lock it was seen to
    /// hold at the kill, until one such restart is certain to show what
    /// it must, or `limit` has passed (false).
    ///
    /// Without persistence the lock is gone with the restart, and the
    /// holder's section cannot end within a TTL of the server being back:
    /// its last renewal was sent before the kill (writes were held back
    /// from the read on), so redlock-run must stop it and exit 70 (or the
    /// checker reports a violation).
    ///
    /// With persistence the lock must be there after the restart (the
    /// event's `survived` is then Some: true or false): it was held at the
    /// kill with more lease left than the restart took plus 300 ms (more
    /// than the drift, the kill margin and --kill-after: redlock-run
    /// cannot have given it up either), and the read after the restart
    /// came before the section could end and release it.
    pub fn restart_under_a_holder(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let ttl = self.p.ttl.as_nanos() as u64;
        while Instant::now() < deadline {
            let Some(h) = self.holder_past_its_lease(deadline, |_| true) else {
                return false;
            };
            let Some(token) = Section::read(&self.sh.dir, h.run).map(|s| s.token) else {
                continue;
            };
            let seen = self.restart_redis(0);
            let held = seen
                .at_kill
                .as_ref()
                .is_some_and(|v| v.as_deref() == Some(&token));
            let certain = if self.p.persistence {
                let pttl = seen.pttl_at_kill.unwrap_or(0).max(0) as u64 * 1_000_000;
                let after = mono_ns();
                held && after + 300_000_000 < seen.read_at + pttl && after < h.ends_no_sooner
            } else {
                held && h.ends_no_sooner > mono_ns() + ttl
            };
            if certain {
                return true;
            }
        }
        false
    }

    /// SIGSTOP master `m` for `d`, then SIGCONT.
    pub fn pause_redis(&self, m: usize, d: Duration) {
        let start = mono_ns();
        self.masters[m].pause();
        // The fault excuses what a blinded sampler cannot see: make sure
        // it is real (logged either way, it blinds from `start` on).
        let pid = self.masters[m].pid().as_raw();
        assert!(
            wait_stopped(pid, Duration::from_secs(2)),
            "redis-server {pid} did not stop on SIGSTOP"
        );
        std::thread::sleep(d);
        self.masters[m].resume();
        self.log(Event {
            master: Some(m),
            ..Event::new(Kind::RedisPause, start)
        });
    }

    /// kill -9 master `m` and start it again on the same port at once.
    /// Without persistence it comes back empty: a new data epoch (the
    /// lock and the fencing counter are gone).
    pub fn restart_redis(&mut self, m: usize) -> Restarted {
        let start = mono_ns();
        let seen = self.restart_master(m);
        let (survived, at_kill) = (seen.survived, seen.at_kill.clone());
        let kind = if self.p.persistence {
            Kind::RestartPersistent
        } else {
            Kind::RestartEmpty
        };
        let epoch =
            (!self.p.persistence).then(|| self.sh.epoch.load(std::sync::atomic::Ordering::SeqCst));
        self.log(Event {
            epoch,
            survived,
            master: Some(m),
            at_kill: Some(at_kill).filter(|_| epoch.is_some()).flatten(),
            ..Event::new(kind, start)
        });
        seen
    }

    /// Restart one master; with persistence, whether a lock held at the
    /// kill was there again after the restart (None: nothing was held);
    /// and the key's value at the kill (None: not observed).
    fn restart_master(&mut self, m: usize) -> Restarted {
        // Writes held back from here to the kill: the state read is the
        // state killed (the connection that paused them dies with it).
        let read_at = mono_ns();
        let before = self.key_state_frozen(m);
        self.masters[m].kill();
        if !self.p.persistence {
            let e = self
                .sh
                .epoch
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            // Atomically: a section must never read a half-written file.
            let tmp = self.sh.dir.join("epoch.tmp");
            std::fs::write(&tmp, e.to_string()).unwrap();
            std::fs::rename(&tmp, self.sh.dir.join("epoch")).unwrap();
        }
        self.masters[m].restart();
        let after = self.key_state(m);
        let survived = match &before {
            // Long enough a lease left that it cannot have expired meanwhile.
            Some((Some(v), pttl)) if self.p.persistence && *pttl > 300 => {
                Some(after.is_some_and(|(a, _)| a.as_deref() == Some(v.as_str())))
            }
            _ => None,
        };
        Restarted {
            survived,
            pttl_at_kill: before.as_ref().map(|(_, pttl)| *pttl),
            at_kill: before.map(|(v, _)| v),
            read_at,
        }
    }

    /// `CLIENT PAUSE 10000 WRITE` (every write, scripts included, waits;
    /// reads go on), then the key's value and PTTL: nothing can change it
    /// until the server is killed.
    fn key_state_frozen(&self, m: usize) -> Option<(Option<String>, i64)> {
        let client = redis::Client::open(self.masters[m].url()).ok()?;
        let mut c = client
            .get_connection_with_timeout(Duration::from_millis(200))
            .ok()?;
        c.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(10_000)
            .arg("WRITE")
            .query(&mut c)
            .ok()?;
        redis::pipe()
            .cmd("GET")
            .arg(&self.sh.key)
            .cmd("PTTL")
            .arg(&self.sh.key)
            .query(&mut c)
            .ok()
    }

    fn key_state(&self, m: usize) -> Option<(Option<String>, i64)> {
        let client = redis::Client::open(self.masters[m].url()).ok()?;
        let mut c = client
            .get_connection_with_timeout(Duration::from_millis(200))
            .ok()?;
        c.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
        redis::pipe()
            .cmd("GET")
            .arg(&self.sh.key)
            .cmd("PTTL")
            .arg(&self.sh.key)
            .query(&mut c)
            .ok()
    }

    /// SIGKILL the holder's redlock-run: its command dies with it
    /// (PDEATHSIG), and the lock frees itself when the lease runs out.
    pub fn kill_holder(&self) -> bool {
        let Some(h) = self.holder(Duration::from_secs(2), |_| true) else {
            return false;
        };
        let start = mono_ns();
        self.sh.signalled.lock().unwrap().insert(h.run);
        signal(h.rr_pid, Signal::SIGKILL);
        self.log(Event {
            run: Some(h.run),
            contender: Some(h.contender),
            ..Event::new(Kind::HolderKill, start)
        });
        true
    }

    /// Freeze the holder (its command, then its redlock-run) until the
    /// lease has passed to another section, then let the command go on
    /// first, while its redlock-run is still frozen: its late write meets
    /// a resource that has seen a higher fencing token, and is refused.
    /// The guarantee excludes pauses longer than the TTL; fencing is what
    /// exposes them.
    ///
    /// A frozen host freezes the holder's guardian too (first: it would
    /// otherwise kill the frozen command at its deadline, as it must when
    /// redlock-run alone stalls, see [`World::stall_redlock_run`]).
    pub fn freeze_holder(&self) -> bool {
        self.holder(Duration::from_secs(2), |_| true)
            .and_then(|h| self.freeze(h))
            .is_some()
    }

    /// A late write certainly refused by the fencing token: freeze holders
    /// (as [`World::freeze_holder`]) until one is frozen before its
    /// section's sleep could end (so before its last write to the
    /// resource), a section that began after the freeze had its own,
    /// higher, token accepted before the frozen command went on, and the
    /// command made its last write before its redlock-run was let go (the
    /// end stamp is written after it). That write met the higher token and
    /// must have been refused: a refusal by a section that began after the
    /// freeze is what `stale_rejections` counts; any other outcome is a
    /// violation the checker reports.
    /// False if none came by `limit`.
    pub fn freeze_holder_until_passed_on(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(h) = self.holder(left, |_| true) else {
                return false;
            };
            if self.freeze(h) == Some(true) {
                return true;
            }
        }
        false
    }

    /// Freeze `h` (see [`World::freeze_holder`]); None if it could not be
    /// frozen, else whether its last write is certain to be refused: it
    /// was stopped before its sleep could end, a later section's token
    /// was accepted before it went on, and it made that write before its
    /// redlock-run was let go.
    fn freeze(&self, h: Holder) -> Option<bool> {
        let guardian = guardian_of(h.rr_pid);
        let thaw = |pids: &[i32]| {
            for &p in pids.iter().rev() {
                signal(p, Signal::SIGCONT);
            }
        };
        // Guardian first, then the command, then redlock-run; each must be
        // seen stopped ('T' in /proc/PID/stat: kill(2) returns before the
        // target has acted on SIGSTOP, and under load that can take a
        // while) before the next, and before the freeze counts: an overlap
        // is excused only if it began after every one of them had stopped.
        let mut stopped: Vec<i32> = Vec::new();
        for pid in guardian.into_iter().chain([h.pid, h.rr_pid]) {
            signal(pid, Signal::SIGSTOP);
            stopped.push(pid);
            if !wait_stopped(pid, Duration::from_millis(500)) {
                thaw(&stopped);
                return None;
            }
        }
        // Its command is stopped by now: before its last write if its
        // sleep cannot have ended yet.
        let before_last_write = h.ends_no_sooner > mono_ns();
        let ended = Section::read(&self.sh.dir, h.run).is_none_or(|s| s.ended());
        if ended {
            // It finished just before: not a frozen section.
            thaw(&stopped);
            return None;
        }
        let thaw_guardian = || {
            if let Some(g) = guardian {
                signal(g, Signal::SIGCONT);
            }
        };
        let start = mono_ns();
        let limit = Instant::now() + self.p.ttl * 3;
        while Instant::now() < limit && !self.section_started_since(start, h.run) {
            std::thread::sleep(Duration::from_millis(2));
        }
        // A section that began after the freeze has its token accepted by
        // the resource within a moment of its start stamp: wait for that
        // too (as long), so that the frozen command's late write meets it.
        let mut passed_on = self.section_begun_since(start, h.run);
        while Instant::now() < limit && !passed_on {
            std::thread::sleep(Duration::from_millis(1));
            passed_on = self.section_begun_since(start, h.run);
        }
        signal(h.pid, Signal::SIGCONT);
        let limit = Instant::now() + Duration::from_secs(2);
        while Instant::now() < limit
            && alive(h.pid)
            && !Section::read(&self.sh.dir, h.run).is_some_and(|s| s.ended())
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Its last write made (the end stamp follows it), while its
        // redlock-run was still frozen and could not stop it first.
        let wrote = Section::read(&self.sh.dir, h.run).is_some_and(|s| s.ended());
        signal(h.rr_pid, Signal::SIGCONT);
        thaw_guardian();
        self.log(Event {
            run: Some(h.run),
            contender: Some(h.contender),
            ..Event::new(Kind::HolderFreeze, start)
        });
        Some(before_last_write && passed_on && wrote)
    }

    /// SIGSTOP the holder's redlock-run alone (its command and guardian run
    /// on) for `d`, longer than the lease: a stalled wrapper. Nothing is
    /// excused: the guardian must kill the command before the lease can
    /// expire, and the run must exit 70.
    pub fn stall_redlock_run(&self, d: Duration) -> bool {
        let Some(h) = self.long_holder(true) else {
            return false;
        };
        let start = mono_ns();
        signal(h.rr_pid, Signal::SIGSTOP);
        // Counted only if it took effect (a stall that never happened
        // would make "a stalled run was checked" vacuous).
        let stopped = wait_stopped(h.rr_pid, Duration::from_millis(500));
        if stopped {
            std::thread::sleep(d);
        }
        signal(h.rr_pid, Signal::SIGCONT);
        if !stopped {
            return false;
        }
        self.log(Event {
            run: Some(h.run),
            contender: Some(h.contender),
            ..Event::new(Kind::RrStall, start)
        });
        true
    }

    /// A lease certainly lost by a stalled redlock-run: SIGSTOP it alone
    /// while its section has more than a TTL to run, and keep it stopped
    /// for a TTL + 300 ms. It sent its last renewal before it stopped, so
    /// the lease is valid until then + TTL at most, and the command cannot
    /// end by then: its guardian must kill it in time and the run exit 70
    /// once resumed (or the checker reports a violation; the sampler is
    /// not blinded, so the kill is checked against the lease). A holder
    /// that does not fit is let go (the stall is still logged) and the
    /// next one tried, until `limit` (false).
    pub fn stall_redlock_run_past_its_lease(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let ttl = self.p.ttl.as_nanos() as u64;
        while Instant::now() < deadline {
            let Some(h) = self.holder_past_its_lease(deadline, |_| true) else {
                return false;
            };
            let start = mono_ns();
            signal(h.rr_pid, Signal::SIGSTOP);
            let stopped = wait_stopped(h.rr_pid, Duration::from_millis(500));
            let certain = stopped && h.ends_no_sooner > mono_ns() + ttl;
            if certain {
                std::thread::sleep(self.p.ttl + Duration::from_millis(300));
            }
            signal(h.rr_pid, Signal::SIGCONT);
            if stopped {
                self.log(Event {
                    run: Some(h.run),
                    contender: Some(h.contender),
                    ..Event::new(Kind::RrStall, start)
                });
            }
            if certain {
                return true;
            }
        }
        false
    }

    /// Redis answers OOM to every write for `d` (maxmemory 1 byte with
    /// `noeviction`): renewals fail, waiters retry.
    pub fn oom_redis(&self, m: usize, d: Duration) {
        let start = mono_ns();
        let set = |v: &str| {
            let _: Result<(), _> = redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory")
                .arg(v)
                .query(&mut self.masters[m].conn());
        };
        set("1");
        std::thread::sleep(d);
        set("0");
        self.log(Event {
            master: Some(m),
            ..Event::new(Kind::Oom, start)
        });
    }

    /// Whether a section other than `run`'s started after `t`.
    fn section_started_since(&self, t: u64, run: u64) -> bool {
        self.section_since(t, run, |_| true)
    }

    /// Whether a section other than `run`'s started after `t` and the
    /// resource accepted its token.
    fn section_begun_since(&self, t: u64, run: u64) -> bool {
        self.section_since(t, run, |s| s.begin_ok == Some(true))
    }

    fn section_since(&self, t: u64, run: u64, also: impl Fn(&Section) -> bool) -> bool {
        let live: Vec<u64> = self.sh.live.lock().unwrap().keys().copied().collect();
        let in_live = live
            .iter()
            .filter(|&&id| id != run)
            .any(|&id| Section::read(&self.sh.dir, id).is_some_and(|s| s.t0 > t && also(&s)));
        in_live
            || self
                .sh
                .runs
                .lock()
                .unwrap()
                .iter()
                .any(|r| r.section.as_ref().is_some_and(|s| s.t0 > t && also(s)))
    }

    /// Quorum: master `m` down (kill -9) for `d`, then back with its data.
    pub fn master_down(&mut self, m: usize, d: Duration) {
        let start = mono_ns();
        self.masters[m].kill();
        std::thread::sleep(d);
        self.masters[m].restart();
        self.log(Event {
            master: Some(m),
            ..Event::new(Kind::MasterDown, start)
        });
    }

    /// Quorum: master `m` cut off from every contender for `d` (it keeps
    /// running; the sampler still sees it).
    pub fn partition_master(&self, m: usize, d: Duration) {
        let start = mono_ns();
        for proxy in &self.proxies[m] {
            proxy.set_mode(Mode::Blackhole);
        }
        std::thread::sleep(d);
        for proxy in &self.proxies[m] {
            proxy.set_mode(Mode::Pass);
        }
        self.log(Event {
            master: Some(m),
            ..Event::new(Kind::MinorityPartition, start)
        });
    }

    /// Quorum: restart every master in turn, `gap` apart.
    pub fn rolling_restart(&mut self, gap: Duration) {
        let start = mono_ns();
        let mut survived = None;
        for m in 0..self.masters.len() {
            if let Some(s) = self.restart_master(m).survived {
                survived = Some(survived.unwrap_or(true) && s);
            }
            std::thread::sleep(gap);
        }
        self.log(Event {
            survived,
            ..Event::new(Kind::RollingRestart, start)
        });
    }
}
