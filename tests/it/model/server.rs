//! A Valkey server whose clock the test moves (libfaketime), the dump of
//! its keys, and raw subscribers that stand for waiting clients.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{ServerKind, free_port, libfaketime};

/// Valkey 9.1 from `scripts/servers` (built with libc malloc, so it runs
/// under libfaketime; Debian's jemalloc redis-server does not).
pub fn valkey_binary() -> PathBuf {
    let bin = ServerKind::Valkey91.binary();
    assert!(
        bin.exists(),
        "{} not found: {}",
        bin.display(),
        ServerKind::Valkey91.install_hint()
    );
    bin
}

pub struct ClockServer {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    /// How far the server's clock is ahead of the real one (ms).
    pub offset_ms: i64,
    conn: redis::Connection,
}

impl ClockServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ts = dir.path().join("faketime");
        std::fs::write(&ts, "+0\n").unwrap();
        let port = free_port();
        let child = Command::new(valkey_binary())
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("valkey.log"))
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME_TIMESTAMP_FILE", &ts)
            .env("FAKETIME_NO_CACHE", "1")
            .env("DONT_FAKE_MONOTONIC", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start valkey-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        let conn = loop {
            let c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .unwrap()
                .get_connection_with_timeout(Duration::from_secs(1));
            if let Ok(mut c) = c {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    break c;
                }
            }
            assert!(Instant::now() < deadline, "valkey did not come up");
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut conn = conn;
        let _: () = redis::cmd("ACL")
            .arg(&[
                "SETUSER",
                "job",
                "on",
                ">pw",
                "~*",
                "+@all",
                "resetchannels",
            ])
            .query(&mut conn)
            .unwrap();
        ClockServer {
            port,
            child,
            dir,
            offset_ms: 0,
            conn,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A user with every command and key but no pub/sub channel (Redis 7's
    /// default for a new user, `acl-pubsub-default resetchannels`).
    pub fn url_no_channels(&self) -> String {
        format!("redis://job:pw@127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("valkey.log")).unwrap_or_default()
    }

    /// Move the server's clock forward by `ms` (key expiry included).
    pub fn advance(&mut self, ms: i64) {
        assert!(ms >= 0, "the clock only moves forward");
        let before = self.now_ms();
        self.offset_ms += ms;
        let ts = self.dir.path().join("faketime");
        let tmp = self.dir.path().join("faketime.tmp");
        let o = self.offset_ms;
        std::fs::write(&tmp, format!("+{}.{:03}s\n", o / 1000, o % 1000)).unwrap();
        // Atomic: libfaketime re-reads the file on every call.
        std::fs::rename(&tmp, &ts).unwrap();
        // libfaketime sees the new file a few ms later: wait until the
        // server's clock shows the move.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.now_ms() < before + ms {
            assert!(Instant::now() < deadline, "the server's clock did not move");
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The server's clock (`TIME`), ms since the epoch.
    pub fn now_ms(&mut self) -> i64 {
        let (s, us): (i64, i64) = redis::cmd("TIME").query(&mut self.conn).unwrap();
        s * 1000 + us / 1000
    }

    pub fn cmd<T: redis::FromRedisValue>(&mut self, args: &[&str]) -> redis::RedisResult<T> {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut self.conn)
    }

    /// Every key on the server, with its type, PTTL and contents, at one
    /// instant of the server's clock (returned with it).
    pub fn dump(&mut self) -> (i64, Dump) {
        let json: String = redis::cmd("EVAL")
            .arg(DUMP_LUA)
            .arg(0)
            .query(&mut self.conn)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let now = v[0].as_i64().unwrap();
        let mut out = Dump::new();
        for e in v[1].as_array().into_iter().flatten() {
            let k = e[0].as_str().unwrap().to_string();
            let ty = e[1].as_str().unwrap().to_string();
            let pttl = e[2].as_i64().unwrap();
            let items: Vec<String> = e[3]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(k, DumpEntry { ty, pttl, items });
        }
        (now, out)
    }

    /// Whether anyone listens on `channel`.
    pub fn numsub(&mut self, channel: &str) -> i64 {
        let (_, n): (String, i64) = self.cmd(&["PUBSUB", "NUMSUB", channel]).unwrap();
        n
    }
}

impl Drop for ClockServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- valkey log ----\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One key as the dump shows it: a string is one item, a list its items,
/// a sorted set member, score, member, score..., a hash field, value...
#[derive(Debug, Clone, PartialEq)]
pub struct DumpEntry {
    pub ty: String,
    pub pttl: i64,
    pub items: Vec<String>,
}

pub type Dump = BTreeMap<String, DumpEntry>;

const DUMP_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local keys = redis.call('KEYS', '*')
table.sort(keys)
for _, k in ipairs(keys) do
  local ty = redis.call('TYPE', k).ok
  local v = {}
  if ty == 'string' then v = {redis.call('GET', k)}
  elseif ty == 'list' then v = redis.call('LRANGE', k, 0, -1)
  elseif ty == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif ty == 'hash' then v = redis.call('HGETALL', k)
  elseif ty == 'set' then v = redis.call('SMEMBERS', k) end
  if ty ~= 'none' then
    table.insert(out, {k, ty, redis.call('PTTL', k), v})
  end
end
return cjson.encode({now, out})
";

/// A client subscribed to one channel over a raw connection: it counts
/// the messages that arrive. Dropping it closes the connection.
pub struct Subscriber {
    stream: TcpStream,
    buf: Vec<u8>,
    seen: usize,
}

const MESSAGE: &[u8] = b"$7\r\nmessage\r\n";

impl Subscriber {
    pub fn new(port: u16, channel: &str) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        let cmd = format!(
            "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
            channel.len()
        );
        stream.write_all(cmd.as_bytes()).unwrap();
        let mut s = Subscriber {
            stream,
            buf: Vec::new(),
            seen: 0,
        };
        // The confirmation ends with the subscription count, `:1`.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !s.buf.ends_with(b":1\r\n") {
            assert!(Instant::now() < deadline, "SUBSCRIBE not confirmed");
            s.read_for(Duration::from_millis(100));
        }
        s.buf.clear();
        s
    }

    /// Read what has arrived, waiting up to `d` (zero: not at all).
    fn read_for(&mut self, d: Duration) {
        if d.is_zero() {
            self.stream.set_nonblocking(true).unwrap();
        } else {
            self.stream.set_nonblocking(false).unwrap();
            self.stream.set_read_timeout(Some(d)).unwrap();
        }
        let mut b = [0u8; 4096];
        match self.stream.read(&mut b) {
            Ok(n) => self.buf.extend_from_slice(&b[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("subscriber: {e}"),
        }
    }

    fn count(&self) -> usize {
        self.buf
            .windows(MESSAGE.len())
            .filter(|w| *w == MESSAGE)
            .count()
    }

    /// Messages that arrived since the last call, waiting up to `wait`
    /// for at least one.
    pub fn take(&mut self, wait: Duration) -> usize {
        let deadline = Instant::now() + wait;
        self.read_for(Duration::ZERO);
        while self.count() == self.seen && Instant::now() < deadline {
            self.read_for(Duration::from_millis(1));
        }
        let n = self.count() - self.seen;
        self.seen = self.count();
        n
    }
}
