//! Progress while waiting for a lock, on stderr: once a wait has lasted a
//! second, say which key, who holds it (host, pid, command, since), the
//! timeout and our place in the queue. On a terminal (text log format) that
//! is one line redrawn in place every second and cleared when the wait
//! ends; elsewhere (CI logs, files, `--log-format json`) an info event at
//! the start, at most one a minute after that, and one when the wait ends.
//!
//! It is a side channel: the wait loop (`lock::wait`) shows it what each
//! attempt saw (so the holder shown is the current one at no extra cost)
//! and ticks it between attempts; nothing here can hold up an attempt or
//! change an exit code. The terminal line is written by a thread of its
//! own, so a terminal that blocks writes (XOFF) cannot stall the wait, and
//! every write error is ignored. `-q` (log level off) silences all of it,
//! and so does `--timeout 0` (cron stays silent).

use std::io::Write as _;
use std::sync::mpsc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::time::Instant;

use crate::cli::{LogFormat, Timeout};
use crate::display::escape_controls;
use crate::lock::{Attempt, Holder, WaitObserver, WaitOutcome};

/// A wait shorter than this shows nothing.
const ANNOUNCE_AFTER: Duration = Duration::from_secs(1);
/// Plain and JSON lines: at most one per this.
const LINE_EVERY: Duration = Duration::from_secs(60);
/// The terminal line: redrawn this often (the elapsed time moves).
const REDRAW_EVERY: Duration = Duration::from_secs(1);
/// The terminal line: our place in the queue is looked up this often.
const POSITION_EVERY: Duration = Duration::from_secs(5);
/// How long the end of a wait waits for the terminal line to be cleared.
const CLEAR_GRACE: Duration = Duration::from_millis(50);

enum Output {
    Off,
    /// Info events through the logger (text or JSON).
    Events,
    /// One line in place; its writer starts with the first draw.
    Terminal(Option<TermLine>),
}

/// What the last attempt saw.
enum Seen {
    Nothing,
    Held(Holder),
    Unavailable(String),
}

pub(crate) struct Progress {
    key: String,
    timeout: Option<Duration>,
    started: Instant,
    out: Output,
    seen: Seen,
    position: Option<u64>,
    position_asked: Option<Instant>,
    announced: bool,
    next: Instant,
}

impl Progress {
    /// Progress for a wait on `key` of at most `timeout`. Off with
    /// `--timeout 0`, or when the logger is off (`-q`).
    pub(crate) fn new(key: &str, timeout: Timeout) -> Self {
        let enabled =
            timeout != Timeout::After(Duration::ZERO) && tracing::enabled!(tracing::Level::INFO);
        let out = match crate::logging::format() {
            _ if !enabled => Output::Off,
            LogFormat::Text if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
                Output::Terminal(None)
            }
            _ => Output::Events,
        };
        let started = Instant::now();
        Progress {
            key: key.to_string(),
            timeout: match timeout {
                Timeout::After(d) => Some(d),
                Timeout::Never => None,
            },
            started,
            out,
            seen: Seen::Nothing,
            position: None,
            position_asked: None,
            announced: false,
            next: started + ANNOUNCE_AFTER,
        }
    }

    /// The wait is over: clear the terminal line, or log how it ended.
    pub(crate) fn end<C>(mut self, outcome: &WaitOutcome<C>) {
        if !self.announced {
            return;
        }
        let how = match outcome {
            WaitOutcome::Acquired(_) => "acquired",
            WaitOutcome::TimedOut { .. } => "timed out",
            WaitOutcome::Cancelled(_) => "interrupted",
        };
        match &mut self.out {
            Output::Off => {}
            Output::Events => tracing::info!(
                key = %escape_controls(&self.key),
                waited_s = self.started.elapsed().as_secs(),
                outcome = how,
                "stopped waiting for the lock"
            ),
            Output::Terminal(line) => {
                if let Some(line) = line.take() {
                    line.clear();
                }
            }
        }
    }

    /// The start of a wait, or a line a minute into it (text or JSON).
    fn event(&self, first: bool) {
        let message = if first {
            "waiting for the lock"
        } else {
            "still waiting for the lock"
        };
        let key = escape_controls(&self.key);
        let waited_s = self.started.elapsed().as_secs();
        let timeout_s = self.timeout.map(|t| t.as_secs());
        match &self.seen {
            Seen::Held(h) => {
                let info = h.info.as_ref();
                tracing::info!(
                    key = %key,
                    host = info.map(|i| escape_controls(&i.host)),
                    pid = info.map(|i| i.pid),
                    command = info.map(|i| escape_controls(&i.command)),
                    since = holder_since(h),
                    holder = info.is_none().then(|| h.to_string()),
                    waited_s,
                    timeout_s,
                    position = self.position,
                    "{message}"
                );
            }
            Seen::Unavailable(reason) => tracing::info!(
                key = %key,
                error = %reason,
                waited_s,
                timeout_s,
                "{message} (Redis does not answer)"
            ),
            Seen::Nothing => {}
        }
    }

    /// The terminal line.
    fn line(&self) -> String {
        let waited = secs(self.started.elapsed());
        let mut s = format!(
            "redlock-run: waiting for lock \"{}\": {}",
            escape_controls(&self.key),
            match self.timeout {
                Some(t) => format!("{waited} of {}", humantime::format_duration(t)),
                None => format!("{waited}, no timeout"),
            }
        );
        match &self.seen {
            Seen::Held(h) => {
                s += &format!("; held by {h}");
                if let Some(since) = holder_since(h) {
                    s += &format!(" since {since}");
                }
            }
            Seen::Unavailable(reason) => s += &format!("; Redis does not answer: {reason}"),
            Seen::Nothing => {}
        }
        if let Some(p) = self.position {
            s += &format!("; #{p} in queue");
        }
        s
    }
}

impl WaitObserver for Progress {
    fn attempted(&mut self, attempt: &Attempt) {
        match attempt {
            Attempt::Held { holder, .. } => self.seen = Seen::Held(holder.clone()),
            Attempt::Unavailable { reason, .. } => self.seen = Seen::Unavailable(reason.clone()),
            Attempt::Acquired(_)
            | Attempt::AlreadyRan { .. }
            | Attempt::ClockAhead { .. }
            | Attempt::Mismatch { .. } => {}
        }
    }

    fn next_tick(&self) -> Option<Instant> {
        match self.out {
            Output::Off => None,
            _ => Some(self.next),
        }
    }

    fn wants_position(&self) -> bool {
        // No extra request to a Redis that does not answer.
        if matches!(self.seen, Seen::Unavailable(_)) {
            return false;
        }
        match self.out {
            Output::Off => false,
            Output::Events => true,
            Output::Terminal(_) => self
                .position_asked
                .is_none_or(|at| at.elapsed() >= POSITION_EVERY),
        }
    }

    fn position(&mut self, position: Option<u64>) {
        self.position = position;
        self.position_asked = Some(Instant::now());
    }

    fn tick(&mut self) {
        let first = !self.announced;
        self.announced = true;
        let now = Instant::now();
        self.next = match &self.out {
            Output::Off => now + LINE_EVERY,
            Output::Events => {
                self.event(first);
                now + LINE_EVERY
            }
            Output::Terminal(_) => {
                let text = self.line();
                if let Output::Terminal(line) = &mut self.out {
                    if line.is_none() {
                        *line = TermLine::start();
                    }
                    if let Some(line) = line {
                        line.draw(text);
                    }
                }
                // On whole seconds of the wait, so the count moves evenly.
                let whole = (now - self.started).as_secs() + 1;
                self.started + Duration::from_secs(whole).max(REDRAW_EVERY)
            }
        };
    }
}

impl Drop for Progress {
    /// A wait left by an error or a panic still clears its line.
    fn drop(&mut self) {
        if let Output::Terminal(Some(line)) = &mut self.out {
            line.clear_now();
        }
    }
}

/// A whole number of seconds, humanly (`1m 5s`).
fn secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// Since when the holder holds the lock (its own clock), RFC 3339.
fn holder_since(h: &Holder) -> Option<String> {
    let ms = h.info.as_ref()?.since_ms;
    let at = UNIX_EPOCH.checked_add(Duration::from_millis(ms))?;
    Some(humantime::format_rfc3339_seconds(at).to_string())
}

/// The terminal line's writer: a thread, so that a terminal that blocks
/// writes holds up only it. `None` clears the line.
struct TermLine {
    tx: Option<mpsc::SyncSender<Option<String>>>,
    done: mpsc::Receiver<()>,
}

impl TermLine {
    /// None if no thread can be started (then no line is shown).
    fn start() -> Option<Self> {
        let (tx, rx) = mpsc::sync_channel::<Option<String>>(64);
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let mut err = std::io::stderr();
                for msg in rx {
                    let bytes = match &msg {
                        Some(text) => format!("\r\x1b[2K{}\r", fit(text, columns())),
                        None => "\r\x1b[2K".to_string(),
                    };
                    // Nothing to do about a failed write: the line is lost.
                    let _ = err.write_all(bytes.as_bytes()).and_then(|()| err.flush());
                    crate::logging::set_line_shown(msg.is_some());
                }
                let _ = done_tx.send(());
            })
            .ok()?;
        Some(TermLine { tx: Some(tx), done })
    }

    /// Queue a redraw; dropped if the terminal is far behind.
    fn draw(&self, text: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Some(text));
        }
    }

    /// Clear the line and let the writer finish, waiting for it only
    /// briefly (so the command's first output comes after the clear).
    fn clear(mut self) {
        self.clear_now();
        let _ = self.done.recv_timeout(CLEAR_GRACE);
    }

    fn clear_now(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.try_send(None);
        }
    }
}

/// The terminal's width (80 when it does not say).
fn columns() -> usize {
    terminal_size::terminal_size_of(std::io::stderr())
        .map(|(w, _)| usize::from(w.0))
        .filter(|&w| w > 0)
        .unwrap_or(80)
}

/// `text` cut to fit in `cols - 1` columns, so that it never wraps (a
/// wrapped line could not be redrawn in place). Characters from U+1100 on
/// count as two columns: wide ones are never under-counted.
fn fit(text: &str, cols: usize) -> String {
    let room = cols.saturating_sub(1);
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        let w = if c >= '\u{1100}' { 2 } else { 1 };
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_to_the_terminal_width() {
        assert_eq!(fit("abcdef", 4), "abc");
        assert_eq!(fit("ab", 80), "ab");
        assert_eq!(fit("東京都", 6), "東京");
        assert_eq!(fit("x", 0), "");
    }

    #[test]
    fn the_terminal_line_names_key_holder_timeout_and_place() {
        let mut p = Progress::new("deploy\nprod", Timeout::Never);
        p.attempted(&Attempt::Held {
            pttl: None,
            holder: Holder {
                info: Some(crate::lock::HolderInfo {
                    host: "build-3".into(),
                    pid: 4242,
                    command: "deploy.sh".into(),
                    since_ms: 1_764_290_462_000,
                    token: "t".into(),
                    label: None,
                }),
                token: "t".into(),
            },
            same_tick: false,
        });
        p.position(Some(2));
        assert_eq!(
            p.line(),
            "redlock-run: waiting for lock \"deploy\\nprod\": 0s, no timeout; \
             held by build-3 pid 4242 (deploy.sh) since 2025-11-28T00:41:02Z; #2 in queue"
        );
        p.timeout = Some(Duration::from_secs(600));
        p.position(None);
        p.attempted(&Attempt::Unavailable {
            reason: "redis://h:1: refused".into(),
            permanent: false,
        });
        assert_eq!(
            p.line(),
            "redlock-run: waiting for lock \"deploy\\nprod\": 0s of 10m; \
             Redis does not answer: redis://h:1: refused"
        );
    }

    #[test]
    fn seconds_are_whole() {
        assert_eq!(secs(Duration::from_millis(65_900)), "1m 5s");
    }
}
