//! Log lines on stderr: one line per event, as text or JSON. The level
//! comes from -v/-q around a per-command default, or else from REDLOCK_LOG.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::{LogArgs, LogFormat};
use crate::exit::Failure;

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The progress events' target (src/progress.rs): shown at every level
/// but off, so that a wait is never silent unless -q asks for it.
const PROGRESS: &str = "redlock_run::progress";

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether a line redrawn in place (the progress line, src/progress.rs)
/// is on screen: the text format then clears it before writing a log line
/// over it.
static LINE_SHOWN: AtomicBool = AtomicBool::new(false);

/// The line in place was drawn (`true`) or cleared (`false`).
pub(crate) fn set_line_shown(shown: bool) {
    LINE_SHOWN.store(shown, Ordering::Relaxed);
}

/// The log format [`init`] installed (text until then).
pub(crate) fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or(LogFormat::Text)
}

/// Default verbosity: run mode prints errors only, schedule one line per tick.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Default {
    Errors = 1,
    Info = 3,
}

/// Install the global logger. Fails (a usage error) on a bad REDLOCK_LOG.
pub(crate) fn init(args: &LogArgs, default: Default, timestamps: bool) -> Result<(), Failure> {
    // Like every option with an environment variable, an explicit -v/-q
    // wins over REDLOCK_LOG.
    let from_flags = args.verbose > 0 || args.quiet > 0;
    let env = std::env::var("REDLOCK_LOG").ok().filter(|_| !from_flags);
    let filter = match env {
        Some(spec) if !spec.trim().is_empty() => {
            let spec = spec.trim();
            EnvFilter::try_new(spec)
                .map_err(|e| Failure::Usage(format!("invalid REDLOCK_LOG {spec:?}: {e}")))?;
            if spec == "off" || spec.contains(PROGRESS) {
                EnvFilter::new(spec)
            } else {
                EnvFilter::new(format!("{spec},{PROGRESS}=info"))
            }
        }
        _ => {
            let idx = (default as i32 + i32::from(args.verbose) - i32::from(args.quiet))
                .clamp(0, LEVELS.len() as i32 - 1) as usize;
            // Configuration warnings (lock::masters) and progress show even
            // when only errors do; -q silences them too.
            let spec = match idx {
                0 => LEVELS[0].to_string(),
                1 => format!(
                    "{},redlock_run::lock::masters=warn,{PROGRESS}=info",
                    LEVELS[1]
                ),
                2 => format!("{},{PROGRESS}=info", LEVELS[2]),
                _ => LEVELS[idx].to_string(),
            };
            EnvFilter::new(spec)
        }
    };
    let _ = FORMAT.set(args.log_format);
    // A log line that cannot be written (EIO, EPIPE, ENOSPC on stderr) is
    // dropped: never a panic, never a second attempt on the same stderr.
    let builder = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.event_format(Text { timestamps }).try_init(),
    };
    Ok(())
}

/// `redlock-run: error: lock lost reason="..."`, optionally time-stamped.
struct Text {
    timestamps: bool,
}

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.timestamps {
            write!(
                w,
                "{} ",
                humantime::format_rfc3339_millis(std::time::SystemTime::now())
            )?;
        }
        // The progress line is on screen (cursor at its start): clear it,
        // it is redrawn below this line.
        if LINE_SHOWN.load(Ordering::Relaxed) {
            write!(w, "\x1b[2K")?;
        }
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        write!(w, "redlock-run: {level}: ")?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<FormattedFields<N>>() {
                    if !f.is_empty() {
                        write!(w, "{f} ")?;
                    }
                }
            }
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
