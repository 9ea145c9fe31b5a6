//! The CLI fuzz's servers and URLs: four real `redis-server`s (one also on
//! a unix socket, one with a password and an ACL user), every way of
//! pointing at them that should work, and many that should not.

use std::path::PathBuf;
use std::time::Duration;

use super::Rng;
use crate::support::RedisServer;

pub const PASSWORD: &str = "p@ss:w/rd";

/// Where a URL points, and how redis-cli reaches the same place.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: usize,
    pub db: u32,
    pub cli: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Url {
    pub url: String,
    /// Reachable with working credentials.
    pub target: Option<Target>,
    /// Connection attempts can take a while (TLS to a plain server).
    pub slow: bool,
}

pub struct Servers {
    pub servers: Vec<RedisServer>,
    pub admin: Vec<redis::Connection>,
    pub sock: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl Servers {
    pub fn start() -> Servers {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("r.sock");
        let servers = vec![
            RedisServer::start_with(&[
                "--unixsocket",
                sock.to_str().unwrap(),
                "--unixsocketperm",
                "700",
            ]),
            RedisServer::start(),
            RedisServer::start(),
            RedisServer::start(),
        ];
        // Server 3 needs a password, or alice's: set after start, since
        // the readiness check pings without one.
        let mut c = servers[3].conn();
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("alice")
            .arg("on")
            .arg(">wonderland")
            .arg("~*")
            .arg("&*")
            .arg("+@all")
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(PASSWORD)
            .query(&mut c)
            .unwrap();
        let admin = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let url = if i == 3 {
                    format!("redis://:{}@127.0.0.1:{}", encode(PASSWORD), s.port)
                } else {
                    s.url()
                };
                let c = redis::Client::open(url)
                    .unwrap()
                    .get_connection_with_timeout(Duration::from_secs(2))
                    .unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                c
            })
            .collect();
        Servers {
            servers,
            admin,
            sock,
            _dir: dir,
        }
    }

    pub fn cli(&self, server: usize, db: u32, user: Option<(&str, &str)>) -> Vec<String> {
        let mut v = vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.servers[server].port.to_string(),
            "-n".into(),
            db.to_string(),
        ];
        if let Some((u, p)) = user {
            if !u.is_empty() {
                v.extend(["--user".into(), u.into()]);
            }
            v.extend(["--pass".into(), p.into(), "--no-auth-warning".into()]);
        }
        v
    }

    /// Good URLs: every way of reaching a server that should work.
    pub fn good(&self, rng: &mut Rng) -> Url {
        let db = if rng.chance(0.5) {
            0
        } else {
            rng.below(16) as u32
        };
        let s = rng.range(0, 2) as usize;
        let port = self.servers[s].port;
        let p3 = self.servers[3].port;
        let sock = self.sock.display().to_string();
        let (url, server, db, cli) = match rng.below(6) {
            0 => (
                format!("redis://127.0.0.1:{port}"),
                s,
                0,
                self.cli(s, 0, None),
            ),
            1 => (
                format!("redis://127.0.0.1:{port}/{db}"),
                s,
                db,
                self.cli(s, db, None),
            ),
            2 => (format!("unix://{sock}"), 0, 0, vec!["-s".into(), sock]),
            3 => (
                format!("redis+unix://{sock}?db={db}"),
                0,
                db,
                vec!["-s".into(), sock, "-n".into(), db.to_string()],
            ),
            4 => (
                format!("redis://:{}@127.0.0.1:{p3}/{db}", encode(PASSWORD)),
                3,
                db,
                self.cli(3, db, Some(("", PASSWORD))),
            ),
            _ => (
                format!("redis://alice:wonderland@127.0.0.1:{p3}"),
                3,
                0,
                self.cli(3, 0, Some(("alice", "wonderland"))),
            ),
        };
        Url {
            url,
            target: Some(Target { server, db, cli }),
            slow: false,
        }
    }

    /// URLs that parse but cannot work (refused, wrong password, no such
    /// db, TLS to a plain server), and garbage that must be refused.
    pub fn bad(&self, rng: &mut Rng) -> Url {
        let p0 = self.servers[0].port;
        let p3 = self.servers[3].port;
        let choices = [
            format!("redis://127.0.0.1:{}", closed_port()),
            format!("redis://:wrong@127.0.0.1:{p3}"),
            format!("redis://127.0.0.1:{p3}"),
            format!("redis://alice:nope@127.0.0.1:{p3}"),
            format!("redis://:secret@127.0.0.1:{p0}"),
            format!("redis://127.0.0.1:{p0}/16"),
            format!("rediss://127.0.0.1:{p0}"),
            "unix:///nonexistent/redis.sock".into(),
            String::new(),
            " ".into(),
            "localhost:6379".into(),
            "http://127.0.0.1".into(),
            "redis://".into(),
            "redis://[::1".into(),
            "redis://127.0.0.1:99999".into(),
            format!("redis://u:pa ss@127.0.0.1:{p0}"),
            format!("redis://127.0.0.1:{p0}/notanumber"),
            "unix://".into(),
            "redis://:hunter2@".into(),
            "r\u{e9}dis://h\u{f6}st".into(),
            format!("redis://127.0.0.1:{p0}\n"),
        ];
        let url = rng.pick(&choices).clone();
        Url {
            slow: url.starts_with("rediss"),
            url,
            target: None,
        }
    }
}

/// Percent-encode a password for a URL.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    crate::support::free_port()
}
