//! Throwaway redis-server processes on free loopback ports (never 6379),
//! stopped by PID when dropped, and a MONITOR reader that counts the
//! commands clients send.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A loopback port nobody listens on right now (the server may still lose
/// a race for it; `RedisServer::start` retries).
pub fn free_port() -> Result<u16> {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
        let port = l.local_addr()?.port();
        if port != 6379 {
            return Ok(port);
        }
    }
}

/// SIGTERM, a grace period, then SIGKILL; always reaped. By PID only.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Start one server with nothing persisted, its log in `dir`, and wait
    /// until it answers PING.
    pub fn start(dir: &Path) -> Result<Self> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let parent = nix::unistd::getpid();
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir)
                .arg("--logfile")
                .arg(dir.join(format!("redis-{port}.log")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: between fork and exec this only makes two system
            // calls (prctl, getppid) and allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    // The server must not outlive a harness killed hard.
                    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                    if nix::unistd::getppid() != parent {
                        return Err(std::io::Error::other("the harness is gone"));
                    }
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .context("starting redis-server (is it installed?)")?;
            let mut server = RedisServer { child, port };
            match server.wait_up() {
                Ok(()) => return Ok(server),
                Err(e) => last = format!("{e:#}"),
            }
        }
        bail!("redis-server did not come up: {last}")
    }

    fn wait_up(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait()? {
                bail!("redis-server on port {} exited: {st}", self.port);
            }
            if let Ok(mut c) = self.conn() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("redis-server on port {} never answered PING", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn conn(&self) -> Result<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        Ok(client.get_connection_with_timeout(Duration::from_secs(2))?)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}

/// The address Redis sees for this connection, as MONITOR prints it.
pub fn client_addr(conn: &mut redis::Connection) -> Result<String> {
    let info: String = redis::cmd("CLIENT").arg("INFO").query(conn)?;
    info.split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))
        .map(str::to_string)
        .context("CLIENT INFO without addr=")
}

/// Calls per command from `INFO commandstats` (these include the calls a
/// Lua script makes).
pub fn commandstats(conn: &mut redis::Connection) -> Result<BTreeMap<String, u64>> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn)?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (name, fields) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect())
}

/// One SLOWLOG entry: how long the command ran inside Redis (µs), its
/// arguments (each cut at 128 bytes by Redis) and the client's address.
pub struct SlowEntry {
    pub micros: u64,
    pub args: Vec<String>,
    pub client: String,
}

/// Every entry of SLOWLOG, oldest first (set `slowlog-log-slower-than 0`
/// first to log every command; the reply is newest first).
pub fn slowlog(conn: &mut redis::Connection) -> Result<Vec<SlowEntry>> {
    type Raw = (i64, i64, u64, Vec<String>, String, String);
    let raw: Vec<Raw> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1_000_000)
        .query(conn)?;
    Ok(raw
        .into_iter()
        .rev()
        .map(|(_, _, micros, args, client, _)| SlowEntry {
            micros,
            args,
            client,
        })
        .collect())
}

/// The commands clients send to each server (by name) while `runs` runs:
/// MONITOR tells them from the calls scripts make. `conns`: a connection
/// to each server, for the marker that ends the count.
pub fn census(
    servers: &[&RedisServer],
    conns: &mut [redis::Connection],
    runs: impl FnOnce(),
) -> Result<Vec<BTreeMap<String, u64>>> {
    let monitors = servers
        .iter()
        .map(|s| Monitor::start(s.port, "-"))
        .collect::<Result<Vec<_>>>()?;
    runs();
    let mut out = Vec::with_capacity(servers.len());
    for (m, c) in monitors.iter().zip(conns) {
        // MONITOR reports in order: once our marker is in, so is the rest.
        redis::cmd("ECHO").arg("census").query::<String>(c)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut sent = loop {
            let t = m.tally();
            if t.by_command.contains_key("echo") {
                break t.by_command;
            }
            if Instant::now() > deadline {
                bail!("MONITOR never showed the harness's ECHO");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        sent.remove("echo");
        out.push(sent);
    }
    Ok(out)
}

/// Commands seen by MONITOR: sent by clients, or run inside a Lua script.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub client: u64,
    pub lua: u64,
    pub by_command: BTreeMap<String, u64>,
}

impl Tally {
    pub fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            client: self.client - earlier.client,
            lua: self.lua - earlier.lua,
            by_command: self
                .by_command
                .iter()
                .map(|(k, v)| (k.clone(), v - earlier.by_command.get(k).unwrap_or(&0)))
                .filter(|(_, v)| *v > 0)
                .collect(),
        }
    }
}

/// A MONITOR connection read by a thread until dropped.
pub struct Monitor {
    stream: TcpStream,
    tally: Arc<Mutex<Tally>>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Start counting; commands from the connection at `ignore` (the
    /// harness's own) are left out.
    pub fn start(port: u16, ignore: &str) -> Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).context("connecting for MONITOR")?;
        (&stream).write_all(b"MONITOR\r\n")?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut first = String::new();
        reader.read_line(&mut first)?;
        if !first.starts_with("+OK") {
            bail!("MONITOR answered {first:?}");
        }
        let tally = Arc::new(Mutex::new(Tally::default()));
        let shared = tally.clone();
        let ignore = ignore.to_string();
        let thread = std::thread::spawn(move || {
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let Some((source, command)) = parse_monitor_line(&line) else {
                    continue;
                };
                if source == ignore {
                    continue;
                }
                let mut t = shared.lock().unwrap();
                if source == "lua" {
                    t.lua += 1;
                } else {
                    t.client += 1;
                    *t.by_command.entry(command.to_string()).or_default() += 1;
                }
            }
        });
        Ok(Monitor {
            stream,
            tally,
            thread: Some(thread),
        })
    }

    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `+1700000000.123456 [0 127.0.0.1:5000] "evalsha" ...` -> (source, command).
fn parse_monitor_line(line: &str) -> Option<(&str, String)> {
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    let source = line[open + 1..close].split_whitespace().nth(1)?;
    let command = line[close + 1..]
        .trim_start()
        .strip_prefix('"')?
        .split('"')
        .next()?
        .to_ascii_lowercase();
    Some((source, command))
}
