//! A throwaway PostgreSQL for the pages whose examples write to a
//! database (the fencing recipe): initdb and postgres on a free loopback
//! port, as nobody when run as root (PostgreSQL refuses root).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::support::free_port;

pub(super) struct Postgres {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub(super) fn bin(name: &str) -> PathBuf {
        // Debian keeps the server's programs off PATH.
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path().join("bin").join(name))
            .filter(|p| p.exists())
            .collect();
        versions.sort();
        versions.pop().unwrap_or_else(|| PathBuf::from(name))
    }

    pub(super) fn start() -> Result<Postgres, String> {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // PostgreSQL refuses to run as root: as nobody, then.
        let root_user = std::os::unix::fs::MetadataExt::uid(&dir.path().metadata().unwrap()) == 0;
        let as_user = |c: &mut Command| {
            if root_user {
                c.uid(65534).gid(65534);
            }
        };
        if root_user {
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534))
                .map_err(|e| e.to_string())?;
        }
        let mut initdb = Command::new(Self::bin("initdb"));
        initdb
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data);
        as_user(&mut initdb);
        let out = initdb
            .output()
            .map_err(|e| format!("initdb (install postgresql): {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let port = free_port();
        let mut server = Command::new(Self::bin("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_user(&mut server);
        let child = server.spawn().map_err(|e| format!("postgres: {e}"))?;
        let pg = Postgres {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new("psql")
                .args([&pg.url(), "-qAtXc", "select 1"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Ok(pg);
            }
            if Instant::now() > deadline {
                return Err("postgres did not come up in 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(super) fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: postgres's fast shutdown.
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGINT);
        let _ = self.child.wait();
    }
}
