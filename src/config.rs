//! Turns parsed arguments into a checked configuration. Everything here is
//! offline: bad input is refused (exit 2) before any connection is made.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use crate::cli::{CommandArgs, LeaseArgs, Target};
use crate::clock::BootInstant;
use crate::exit::Failure;
use crate::redis_file;
use crate::urls::{self, redact};

/// Shortest lease we accept: below this, scheduling noise eats the margins.
pub(crate) const MIN_TTL: Duration = Duration::from_millis(100);
/// Longest --ttl, --min-hold or --every we accept: far beyond any use, and
/// far inside what Redis (PX in ms) and the clocks can represent.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(315_576_000); // 10 years

/// Refuse a duration above [`MAX_DURATION`].
pub(crate) fn at_most_max(flag: &str, d: Duration) -> Result<Duration, Failure> {
    if d > MAX_DURATION {
        return Err(Failure::Usage(format!(
            "{flag} {} is too long: the maximum is {}",
            humantime::format_duration(d),
            humantime::format_duration(MAX_DURATION)
        )));
    }
    Ok(d)
}

/// Slack kept between the SIGKILL of the command's group and the earliest
/// moment its lease can expire in Redis: the time for the process that
/// sends it (the guardian, or redlock-run) to be scheduled on a loaded
/// machine. Measured on the 2-core CI machine with three CPU-bound
/// processes per core: wake-up late by 0.13 ms at the median, 36 ms at
/// p99, 45 ms at most (docs/reliability.md, "Stalls").
pub const KILL_MARGIN: Duration = Duration::from_millis(100);

/// Time allowed, on top of the --refresh periods, for a renewal to be sent
/// and answered (and for the command to be started before the first one):
/// scheduling on a loaded machine plus a round trip.
pub(crate) const RENEW_ALLOWANCE: Duration = Duration::from_millis(100);

/// One Redis server (or one Sentinel-managed primary, or one Cluster),
/// with a display form that never shows a password.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The data node's address and settings (user, password, db, TLS);
    /// for Sentinel and Cluster, the first listed address.
    pub(crate) info: ConnectionInfo,
    pub(crate) display: String,
    pub(crate) topology: Topology,
}

/// How the server behind an [`Endpoint`] is found.
#[derive(Debug, Clone)]
pub(crate) enum Topology {
    /// The URL names the master itself.
    Single,
    /// The primary of `service`, found through these Sentinels (and found
    /// again after a failover); `info` carries the data nodes' settings.
    Sentinel {
        sentinels: Vec<ConnectionInfo>,
        service: String,
    },
    /// A Redis Cluster, reached through any of these nodes.
    Cluster { nodes: Vec<ConnectionInfo> },
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, Failure> {
        let url = url.trim();
        let display = redact(url);
        if url.is_empty() {
            return Err(Failure::Usage("empty Redis URL".into()));
        }
        let Some(scheme) = urls::SCHEMES.iter().find(|s| url.starts_with(*s)) else {
            // Without a scheme it may be a password given where the URL
            // belongs: nothing of it is shown (docs/guarantees.md, 9).
            if let Some(host_port) = host_and_port(url) {
                return Err(Failure::Usage(format!(
                    "invalid Redis URL {host_port:?}: it has no scheme; write redis://{host_port}"
                )));
            }
            if !url.contains("://") {
                return Err(Failure::Usage(format!("not a Redis URL: {NO_SCHEME}")));
            }
            return Err(Failure::Usage(format!(
                "invalid Redis URL {display:?}: expected redis://, rediss://, unix://, \
                 redis+sentinel:// or redis+cluster://"
            )));
        };
        if scheme.contains("+sentinel") || scheme.contains("+cluster") {
            return Endpoint::parse_multi(url, scheme, &display)
                .map_err(|why| Failure::Usage(format!("invalid Redis URL {display:?}: {why}")));
        }
        let info = Endpoint::node_info(url, &display)?;
        Ok(Endpoint {
            info,
            display,
            topology: Topology::Single,
        })
    }

    /// A Sentinel or Cluster URL ([`urls::MultiUrl`]): each host checked
    /// like a plain URL (percent-decoding included), in order.
    fn parse_multi(url: &str, scheme: &str, display: &str) -> Result<Self, String> {
        let multi = urls::parse_multi(url, scheme)?;
        let mut nodes = Vec::new();
        let mut sentinels = Vec::new();
        for host in multi.hosts() {
            let host = host?;
            let node = Endpoint::node_info(&host.node, display)
                .map_err(|_| "a host:port is not valid".to_string())?;
            nodes.push(node);
            if let Some(s) = host.sentinel {
                let s = Endpoint::node_info(&s, display).map_err(|_| {
                    "a host:port or the Sentinel credentials are not valid".to_string()
                })?;
                sentinels.push(s);
            }
        }
        let topology = match multi.service {
            Some(service) => Topology::Sentinel { sentinels, service },
            None => Topology::Cluster {
                nodes: nodes.clone(),
            },
        };
        Ok(Endpoint {
            info: nodes.swap_remove(0),
            display: display.to_string(),
            topology,
        })
    }

    /// One node's connection info from a plain URL, checked.
    pub(crate) fn node_info(url: &str, display: &str) -> Result<ConnectionInfo, Failure> {
        let info = url
            .into_connection_info()
            .map_err(|_| Failure::Usage(format!("invalid Redis URL {display:?}")))?;
        if matches!(info.addr(), ConnectionAddr::TcpTls { insecure: true, .. }) {
            return Err(Failure::Usage(format!(
                "invalid Redis URL {display:?}: #insecure (no certificate check) is not \
                 supported; trust the server's CA instead (SSL_CERT_FILE)"
            )));
        }
        let redis = info.redis_settings().clone().set_skip_set_lib_name();
        Ok(info.set_redis_settings(redis))
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.info.addr(), ConnectionAddr::TcpTls { .. })
    }
}

/// The lease's timings, checked against each other.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub ttl: Duration,
    pub refresh: Duration,
    pub kill_after: Duration,
    pub min_hold: Duration,
    /// `--wait-replicas`: replicas that must acknowledge each acquisition
    /// and renewal (`WAIT`); 0 = none.
    pub wait_replicas: u32,
    /// `--limit`: how many may hold the lock at once.
    pub limit: u32,
}

impl Lease {
    pub fn from_args(a: &LeaseArgs) -> Result<Self, Failure> {
        Lease::new(a, 0)
    }

    /// The lease, with `wait_replicas` replicas to acknowledge every
    /// acquisition and renewal: the `WAIT` for them comes out of the
    /// renewal budget ([`Lease::grace_budget`]).
    pub fn new(a: &LeaseArgs, wait_replicas: u32) -> Result<Self, Failure> {
        let ttl = at_most_max("--ttl", a.ttl)?;
        let min_hold = at_most_max("--min-hold", a.min_hold)?;
        if ttl < MIN_TTL {
            let min = match a.refresh {
                None => default_refresh_minimum(wait_replicas),
                Some(_) => format!("the minimum is {}", fmt(MIN_TTL)),
            };
            return Err(Failure::Usage(format!(
                "--ttl {} is too short: {min}",
                fmt(ttl)
            )));
        }
        let refresh = checked_refresh(a.refresh, ttl)?;
        let kill_after = checked_kill_after(a, ttl, refresh, wait_replicas)?;
        Ok(Lease {
            ttl,
            refresh,
            kill_after,
            min_hold,
            wait_replicas,
            limit: a.limit,
        })
    }

    /// The one rule between the lease's timings, shared by the option
    /// check and the supervisor: after a renewal, the command must get its
    /// SIGTERM no earlier than two --refresh periods (one renewal may fail
    /// outright) plus [`RENEW_ALLOWANCE`] (the next one's round trip)
    /// later (with `--wait-replicas`, plus the `WAIT` for the replicas),
    /// and its SIGKILL [`KILL_MARGIN`] before the earliest moment the
    /// lease can expire (--ttl less the drift allowance). So
    /// `2 x refresh + 100ms + wait + kill_after + 100ms + drift <= ttl`.
    /// Returns the longest --kill-after that fits, or None if nothing does.
    pub(crate) fn grace_budget(
        ttl: Duration,
        refresh: Duration,
        wait: Duration,
    ) -> Option<Duration> {
        ttl.checked_sub(drift(ttl))?
            .checked_sub(KILL_MARGIN)?
            .checked_sub(RENEW_ALLOWANCE)?
            .checked_sub(wait)?
            .checked_sub(refresh * 2)
    }

    /// The rule in words, with the numbers, for an error message.
    fn rule(ttl: Duration, refresh: Duration, wait: Duration) -> String {
        let wait = if wait.is_zero() {
            String::new()
        } else {
            format!(" + {} (WAIT for --wait-replicas)", fmt(wait))
        };
        format!(
            "2 x --refresh ({}) + {} (renewal latency){wait} + --kill-after + {} (kill margin) \
             + {} (clock drift) must not exceed --ttl; shorten --refresh or --kill-after, or \
             lengthen --ttl",
            fmt(refresh * 2),
            fmt(RENEW_ALLOWANCE),
            fmt(KILL_MARGIN),
            fmt(drift(ttl))
        )
    }

    /// How long one `WAIT` for `--wait-replicas` may take (0 without it).
    pub(crate) fn wait_timeout(&self) -> Duration {
        wait_timeout(self.ttl, self.wait_replicas)
    }

    /// Allowance for clock drift between us and Redis (the Redlock paper's
    /// 1% of the TTL plus 2 ms).
    pub(crate) fn drift(&self) -> Duration {
        drift(self.ttl)
    }

    /// Until when a lease granted or renewed by requests sent at `sent_at`
    /// is certainly ours: the TTL from the send time (Redis started the
    /// key's clock after it), less the drift allowance. The one place the
    /// validity is worked out, for an acquisition and for a renewal.
    pub fn valid_until(&self, sent_at: BootInstant) -> BootInstant {
        (sent_at + self.ttl).saturating_sub(self.drift())
    }

    /// When the command's group gets SIGKILL, for a lease certainly ours
    /// until `valid_until`: [`KILL_MARGIN`] before it.
    pub(crate) fn kill_at(&self, valid_until: BootInstant) -> BootInstant {
        valid_until.saturating_sub(KILL_MARGIN)
    }

    /// When it gets SIGTERM: --kill-after before the SIGKILL.
    pub(crate) fn term_at(&self, valid_until: BootInstant) -> BootInstant {
        self.kill_at(valid_until).saturating_sub(self.kill_after)
    }

    /// How long one Redis request may take before we give up on it.
    pub(crate) fn io_timeout(&self) -> Duration {
        (self.ttl / 2).min(Duration::from_secs(5))
    }
}

/// The time allowed for `WAIT` with `--wait-replicas`: a tenth of the
/// lease, at least 150 ms, at most 1 s (replicas on a healthy link
/// acknowledge within a round trip; one that cannot is a failed renewal,
/// not a stall). The server is asked for 100 ms less: it may answer a
/// timed-out WAIT up to its timer period late.
fn wait_timeout(ttl: Duration, replicas: u32) -> Duration {
    if replicas == 0 {
        return Duration::ZERO;
    }
    (ttl / 10).clamp(Duration::from_millis(150), Duration::from_secs(1))
}

fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

/// `d` as a person reads it: rounded to the millisecond (`333ms`, not
/// `333ms 333us 333ns`).
fn fmt(d: Duration) -> humantime::FormattedDuration {
    let ms = (d.as_nanos() + 500_000) / 1_000_000;
    humantime::format_duration(Duration::from_millis(ms.try_into().unwrap_or(u64::MAX)))
}

/// The minimum --ttl with the default --refresh, said so where the rule
/// is explained.
fn default_refresh_minimum(wait_replicas: u32) -> String {
    let replicas = match wait_replicas {
        0 => String::new(),
        n => format!(" and --wait-replicas {n}"),
    };
    format!(
        "with the default --refresh (a third of --ttl){replicas} the minimum is {}",
        fmt(min_ttl(wait_replicas).unwrap_or(MIN_TTL))
    )
}

/// `--refresh` as given (shorter than `ttl`, not 0), else a third of `ttl`.
fn checked_refresh(refresh: Option<Duration>, ttl: Duration) -> Result<Duration, Failure> {
    match refresh {
        Some(r) if r >= ttl => Err(Failure::Usage(format!(
            "--refresh {} must be shorter than --ttl {}",
            fmt(r),
            fmt(ttl)
        ))),
        Some(r) if r.is_zero() => Err(Failure::Usage("--refresh must be greater than 0".into())),
        Some(r) => Ok(r),
        None => Ok(ttl / 3),
    }
}

/// `--kill-after` as given if it fits in what is left of a lease after
/// one missed renewal (the grace between SIGTERM and SIGKILL); by default
/// a third of --ttl, at most 5 s, clamped (not refused) so that it fits.
fn checked_kill_after(
    a: &LeaseArgs,
    ttl: Duration,
    refresh: Duration,
    wait_replicas: u32,
) -> Result<Duration, Failure> {
    let wait = wait_timeout(ttl, wait_replicas);
    let budget = Lease::grace_budget(ttl, refresh, wait);
    match a.kill_after {
        Some(k) if budget.is_some_and(|b| k <= b) => Ok(k),
        Some(k) => {
            let refresh = match a.refresh {
                Some(r) => format!("--refresh {}", fmt(r)),
                None => format!("the default --refresh ({})", fmt(refresh)),
            };
            let fits = match budget {
                Some(b) => format!("at most {} does", fmt(b)),
                None => "no --kill-after does".into(),
            };
            Err(Failure::Usage(format!(
                "--kill-after {} does not fit in --ttl {} with {refresh}: {fits}; {}",
                fmt(k),
                fmt(ttl),
                Lease::rule(ttl, refresh_or(a, ttl), wait)
            )))
        }
        None => match budget {
            Some(b) => Ok((ttl / 3).min(Duration::from_secs(5)).min(b)),
            None if a.refresh.is_none() => Err(Failure::Usage(format!(
                "--ttl {} is too short: {}",
                fmt(ttl),
                default_refresh_minimum(wait_replicas)
            ))),
            None => Err(Failure::Usage(format!(
                "--ttl {} and --refresh {} leave no room for one missed renewal: {}",
                fmt(ttl),
                fmt(refresh),
                Lease::rule(ttl, refresh, wait)
            ))),
        },
    }
}

/// `--refresh` as given, or its default for `ttl`.
fn refresh_or(a: &LeaseArgs, ttl: Duration) -> Duration {
    a.refresh.unwrap_or(ttl / 3)
}

/// The shortest `--ttl` (in whole milliseconds) that the default
/// `--refresh` and `--kill-after` fit in, with `wait_replicas` replicas to
/// wait for: 625ms without.
pub fn min_ttl(wait_replicas: u32) -> Option<Duration> {
    (MIN_TTL.as_millis() as u64..=60_000)
        .map(Duration::from_millis)
        .find(|&ttl| Lease::grace_budget(ttl, ttl / 3, wait_timeout(ttl, wait_replicas)).is_some())
}

/// The program to run, as an argv, and what is stored about it.
#[derive(Debug, Clone)]
pub struct Program {
    pub(crate) argv: Vec<OsString>,
    /// Given as `--shell` (argv is `/bin/sh -c LINE`).
    pub(crate) shell: bool,
    pub(crate) label: Option<String>,
    pub(crate) record_args: bool,
    /// With `--redis-file`: the file's path, given to the command as
    /// REDLOCK_REDIS_FILE, in place of REDLOCK_REDIS (see `child::spawn`).
    pub(crate) redis_file: Option<PathBuf>,
}

impl Program {
    pub fn from_args(a: &CommandArgs) -> Result<Self, Failure> {
        match (&a.shell, a.command.is_empty()) {
            (Some(_), false) => Err(Failure::Usage(
                "give either --shell or a command after --, not both".into(),
            )),
            (Some(line), true) if line.trim().is_empty() => {
                Err(Failure::Usage("the --shell command line is empty".into()))
            }
            (Some(line), true) => Ok(Program {
                argv: vec!["/bin/sh".into(), "-c".into(), line.into()],
                shell: true,
                label: a.label.clone(),
                record_args: a.record_args,
                redis_file: None,
            }),
            (None, true) => Err(Failure::Usage(
                "no command given: put it after `--` (redlock-run --key K -- CMD ARGS) or use --shell"
                    .into(),
            )),
            (None, false) if a.command[0].is_empty() => {
                Err(Failure::Usage("the command name is empty".into()))
            }
            (None, false) => Ok(Program {
                argv: a.command.clone(),
                shell: false,
                label: a.label.clone(),
                record_args: a.record_args,
                redis_file: None,
            }),
        }
    }

    /// The program, run with the servers of `place`: given the
    /// `--redis-file` path, if the servers came from one.
    pub(crate) fn for_place(self, place: &Place) -> Self {
        Program {
            redis_file: place.redis_file.clone(),
            ..self
        }
    }

    /// What is stored with the lock in `command` (docs/guarantees.md,
    /// guarantee 9): the program's name as given (`sh -c` for `--shell`),
    /// or with `--record-args` the whole command line (lossy, truncated).
    pub(crate) fn stored(&self) -> String {
        if !self.record_args {
            return if self.shell {
                "sh -c".into()
            } else {
                self.argv[0].to_string_lossy().into_owned()
            };
        }
        let joined = self
            .argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let mut s: String = joined.chars().take(200).collect();
        if s.len() < joined.len() {
            s.push('…');
        }
        s
    }
}

/// The key and the servers, checked.
#[derive(Debug, Clone)]
pub struct Place {
    pub(crate) key: String,
    pub(crate) endpoints: Vec<Endpoint>,
    /// With `--redis-file`: the file's absolute path, which the command is
    /// given (REDLOCK_REDIS_FILE) instead of the URLs.
    pub(crate) redis_file: Option<PathBuf>,
}

impl Place {
    pub fn from_args(t: &Target) -> Result<Self, Failure> {
        let key = match &t.key {
            None => {
                return Err(Failure::Usage(
                    "--key is required (or set REDLOCK_KEY)".into(),
                ));
            }
            Some(k) if k.is_empty() => {
                return Err(Failure::Usage("the lock key must not be empty".into()));
            }
            Some(k) => k.clone(),
        };
        Ok(Place {
            key,
            endpoints: servers(&t.redis, t.redis_file.as_deref())?,
            redis_file: t.redis_file.as_deref().map(redis_file::inherited),
        })
    }
}

impl Place {
    /// `--limit N` (N > 1) needs one master (a server, a Sentinel-managed
    /// primary or a Cluster): counting holders on a majority of independent
    /// masters does not bound them (docs/design.md, "Up to N holders").
    pub fn check_limit(&self, limit: u32) -> Result<(), Failure> {
        if limit > 1 && self.endpoints.len() > 1 {
            return Err(Failure::Usage(format!(
                "--limit {limit} needs a single --redis URL, not {}: a majority of \
                 independent masters cannot bound N holders (see docs/design.md)",
                self.endpoints.len()
            )));
        }
        Ok(())
    }
}

/// `url` if it is only `HOST:PORT` (a host name or an address, a port
/// number): a URL without its scheme, shown with the fix. Anything else
/// without a scheme may be a password and is never shown.
fn host_and_port(url: &str) -> Option<&str> {
    let (host, port) = url.rsplit_once(':')?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }
    };
    (host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)).then_some(url)
}

/// Why a value that names no scheme is refused, and what to write: it may
/// be a password given where the URL belongs, so nothing of it is shown.
const NO_SCHEME: &str = "it has no scheme (not shown: it may be a password); write \
     redis://HOST:PORT, or rediss://, unix://, redis+sentinel:// or redis+cluster://";

/// The servers named by `--redis` URLs, or (given a path) by the lines of
/// a `--redis-file`, checked.
pub(crate) fn servers(urls: &[String], file: Option<&Path>) -> Result<Vec<Endpoint>, Failure> {
    let Some(path) = file else {
        return endpoints(urls);
    };
    let endpoints = redis_file::read(path)?
        .iter()
        .map(|(line, url)| {
            // A line with no scheme may be a password alone: never shown.
            if !urls::SCHEMES.iter().any(|s| url.starts_with(s)) {
                return Err(Failure::Usage(format!(
                    "{}, line {line}: not a Redis URL: {NO_SCHEME}",
                    path.display()
                )));
            }
            Endpoint::parse(url)
                .map_err(|f| Failure::Usage(format!("{}, line {line}: {f}", path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    checked(endpoints)
}

/// The servers named by `--redis` URLs, checked.
pub fn endpoints(urls: &[String]) -> Result<Vec<Endpoint>, Failure> {
    let endpoints = urls
        .iter()
        .map(|u| Endpoint::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    checked(endpoints)
}

/// At least one server; TLS set up if one needs it.
fn checked(endpoints: Vec<Endpoint>) -> Result<Vec<Endpoint>, Failure> {
    if endpoints.is_empty() {
        return Err(Failure::Usage("no Redis URL given".into()));
    }
    if endpoints.iter().any(Endpoint::is_tls) {
        // Several crypto back ends may be compiled in; pick ours once.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ttl: u64, refresh: Option<u64>, kill: Option<u64>) -> Result<Lease, Failure> {
        Lease::from_args(&LeaseArgs {
            ttl: Duration::from_millis(ttl),
            refresh: refresh.map(Duration::from_millis),
            min_hold: Duration::ZERO,
            kill_after: kill.map(Duration::from_millis),
            limit: 1,
        })
    }

    #[test]
    fn defaults_are_derived_and_clamped() {
        let l = lease(30_000, None, None).unwrap();
        assert_eq!(l.refresh, Duration::from_secs(10));
        assert_eq!(l.kill_after, Duration::from_secs(5));
        // 1000 - 12 drift - 100 margin - 100 latency - 2 x 333.3 refresh.
        let l = lease(1000, None, None).unwrap();
        assert_eq!(l.kill_after.as_millis(), 121);
        assert!(lease(600, None, None).is_err());
        for ttl in [1000, 1001, 1500, 7000, 30_000, 3_600_000] {
            assert!(
                lease(ttl, None, None).is_ok(),
                "--ttl {ttl}ms with defaults"
            );
        }
    }

    #[test]
    fn the_shortest_ttl_for_the_defaults() {
        assert_eq!(min_ttl(0), Some(Duration::from_millis(625)));
        // The WAIT for replicas comes out of the same budget.
        assert_eq!(min_ttl(1), Some(Duration::from_millis(1089)));
        assert!(lease(625, None, None).is_ok());
        assert!(lease(624, None, None).is_err());
        assert_eq!(fmt(Duration::from_nanos(333_333_333)).to_string(), "333ms");
        assert_eq!(
            fmt(Duration::from_micros(1_500_600)).to_string(),
            "1s 501ms"
        );
    }

    #[test]
    fn inconsistent_timings_are_refused() {
        assert!(lease(1000, Some(1000), None).is_err());
        assert!(lease(1000, Some(400), Some(599)).is_err());
        assert!(lease(1000, Some(990), None).is_err());
        assert!(lease(30_000, Some(29_900), None).is_err());
        // 1000 - 12 - 100 - 100 - 2 x 300 = 188: the longest grace that fits.
        assert!(lease(1000, Some(300), Some(188)).is_ok());
        assert!(lease(1000, Some(300), Some(189)).is_err());
        assert!(lease(1000, Some(1), Some(886)).is_err());
        assert!(lease(30_000, Some(1), Some(29_596)).is_err());
        assert!(lease(50, None, None).is_err());
        assert!(lease(u64::MAX, None, None).is_err());
    }

    #[test]
    fn the_wait_for_replicas_comes_out_of_the_renewal_budget() {
        let args = |ttl: u64, refresh: u64, kill: Option<u64>| LeaseArgs {
            ttl: Duration::from_millis(ttl),
            refresh: Some(Duration::from_millis(refresh)),
            min_hold: Duration::ZERO,
            kill_after: kill.map(Duration::from_millis),
            limit: 1,
        };
        // 1000 - 12 - 100 - 100 - 2 x 300 = 188 without WAIT; its 150 ms
        // (a tenth of the TTL, at least 150 ms) leave 38.
        assert!(Lease::new(&args(1000, 300, Some(188)), 0).is_ok());
        let err = Lease::new(&args(1000, 300, Some(188)), 1).unwrap_err();
        assert!(
            err.to_string().contains("150ms (WAIT for --wait-replicas)"),
            "{err}"
        );
        assert!(Lease::new(&args(1000, 300, Some(39)), 1).is_err());
        let l = Lease::new(&args(1000, 300, Some(38)), 1).unwrap();
        assert_eq!(l.wait_timeout(), Duration::from_millis(150));
        // Defaults are clamped to fit, as ever.
        let l = Lease::new(&args(1000, 300, None), 2).unwrap();
        assert_eq!(l.kill_after, Duration::from_millis(38));
        assert_eq!(
            Lease::new(&args(60_000, 20_000, None), 1)
                .unwrap()
                .wait_timeout(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn invalid_urls_never_show_a_password() {
        for bad in [
            "redis://u:secret@[bad",
            "redis://:sec/ret@h:1",
            "redis://:sec#ret@h:1",
            "redis://:secret@h:1x",
            ":secret@h:1",
            "http://:secret@h",
        ] {
            let err = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("sec"), "{bad}: {err}");
        }
    }

    #[test]
    fn urls_are_checked_offline() {
        assert!(Endpoint::parse("redis://127.0.0.1:1").is_ok());
        assert!(Endpoint::parse("unix:///tmp/x.sock").is_ok());
        assert!(Endpoint::parse("localhost:6379").is_err());
        assert!(Endpoint::parse("http://x").is_err());
    }

    #[test]
    fn sentinel_and_cluster_urls() {
        let e = Endpoint::parse("redis+sentinel://:pw@h1:26379,h2:26380/svc/3").unwrap();
        let Topology::Sentinel { sentinels, service } = &e.topology else {
            panic!("{e:?}")
        };
        assert_eq!(service, "svc");
        assert_eq!(sentinels.len(), 2);
        assert_eq!(sentinels[1].addr().to_string(), "h2:26380");
        // The password is the data nodes'; the Sentinels get their own.
        assert_eq!(sentinels[0].redis_settings().password(), None);
        assert_eq!(e.info.redis_settings().password(), Some("pw"));
        assert_eq!(e.info.redis_settings().db(), 3);
        assert_eq!(e.display, "redis+sentinel://:***@h1:26379,h2:26380/svc/3");

        let e = Endpoint::parse("rediss+sentinel://h1:1?sentinel_password=s%40p").unwrap();
        let Topology::Sentinel { sentinels, service } = &e.topology else {
            panic!("{e:?}")
        };
        assert_eq!(service, "mymaster");
        assert!(e.is_tls());
        assert_eq!(sentinels[0].redis_settings().password(), Some("s@p"));
        assert_eq!(e.display, "rediss+sentinel://h1:1?sentinel_password=***");

        let e = Endpoint::parse("redis+cluster://u:p@h1:7000,h2:7001,[::1]:7002").unwrap();
        let Topology::Cluster { nodes } = &e.topology else {
            panic!("{e:?}")
        };
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[2].redis_settings().username(), Some("u"));

        for bad in [
            "redis+sentinel://",
            "redis+sentinel://:secret@",
            "redis+sentinel://h:1,,h:2",
            "redis+sentinel://h:1/svc/x",
            "redis+sentinel://h:1/svc/1/extra",
            "redis+sentinel://h:1?nosuch=1",
            "redis+cluster://:secret@h:1/2",
            "redis+cluster://h:1?sentinel_password=secret",
            "rediss+cluster://h:1#insecure",
        ] {
            let err = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid Redis URL"), "{bad}: {err}");
            assert!(!err.contains("secret"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_a_bare_host_and_port_is_shown_back() {
        for shown in [
            "localhost:6379",
            "10.0.0.1:7000",
            "[::1]:7000",
            "redis-1.example:1",
        ] {
            assert_eq!(host_and_port(shown), Some(shown));
        }
        for hidden in [
            "hunter2",
            "Pa55:w0rdX",
            "h:0",
            ":6379",
            "p@ss:6379",
            "[nope]:1",
            "a b:1",
        ] {
            assert_eq!(host_and_port(hidden), None, "{hidden}");
        }
    }
}
