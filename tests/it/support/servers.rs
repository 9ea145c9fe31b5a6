//! The servers of the test matrix: Debian's Redis 7.0 (`redis-server` on
//! PATH), Redis 6.2.14 and Valkey 9.1.2 (installed by `scripts/servers`
//! under `$REDLOCK_SERVERS_DIR/bin`, never on PATH); and Redis 5.0.6, too
//! old to be supported (built by `scripts/servers`), for the refusal.

use std::cell::Cell;
use std::fmt;
use std::path::PathBuf;

/// One server of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Redis70,
    Redis62,
    Valkey91,
    /// Not supported: the tool refuses it (not in [`ServerKind::ALL`]).
    Redis50,
}

thread_local! {
    /// [`with_server`]'s choice for this thread, over the environment's.
    static CURRENT: Cell<Option<ServerKind>> = const { Cell::new(None) };
}

impl ServerKind {
    /// The supported servers of the matrix.
    pub const ALL: [ServerKind; 3] = [
        ServerKind::Redis70,
        ServerKind::Redis62,
        ServerKind::Valkey91,
    ];

    /// The name `REDLOCK_TEST_SERVER` takes.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Redis70 => "redis-7.0",
            ServerKind::Redis62 => "redis-6.2",
            ServerKind::Valkey91 => "valkey-9.1",
            ServerKind::Redis50 => "redis-5.0",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([ServerKind::Redis50])
            .find(|k| k.name() == name)
    }

    /// How `doctor` names this server, up to the patch level: `Redis 7.0.`.
    pub fn product(self) -> &'static str {
        match self {
            ServerKind::Redis70 => "Redis 7.0.",
            ServerKind::Redis62 => "Redis 6.2.",
            ServerKind::Valkey91 => "Valkey 9.1.",
            ServerKind::Redis50 => "Redis 5.0.",
        }
    }

    /// The server binary (it also runs as a Sentinel with `--sentinel`).
    pub fn binary(self) -> PathBuf {
        match self {
            ServerKind::Redis70 => PathBuf::from("redis-server"),
            ServerKind::Redis62 => servers_dir().join("bin/redis-server-6.2"),
            ServerKind::Valkey91 => servers_dir().join("bin/valkey-server-9.1"),
            ServerKind::Redis50 => servers_dir().join("bin/redis-server-5.0"),
        }
    }

    pub fn install_hint(self) -> &'static str {
        match self {
            ServerKind::Redis70 => "apt-get install redis-server (scripts/test does)",
            _ => "run scripts/servers, which scripts/test runs",
        }
    }

    /// The kind this thread's tests start: [`with_server`]'s, else
    /// `REDLOCK_TEST_SERVER`'s, else Redis 7.0.
    pub fn current() -> Self {
        CURRENT
            .with(Cell::get)
            .unwrap_or_else(|| match std::env::var("REDLOCK_TEST_SERVER") {
                Ok(name) if !name.is_empty() => Self::from_name(&name).unwrap_or_else(|| {
                    panic!(
                        "REDLOCK_TEST_SERVER={name:?}: expected one of {:?}",
                        Self::ALL.map(Self::name)
                    )
                }),
                _ => ServerKind::Redis70,
            })
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `$REDLOCK_SERVERS_DIR`, default `target/servers` in the repository.
fn servers_dir() -> PathBuf {
    std::env::var_os("REDLOCK_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/servers"))
}

/// Run `f` with every server it starts on this thread (plain, Sentinel,
/// Cluster node) of `kind`; the previous choice comes back afterwards,
/// also when `f` panics.
pub fn with_server<R>(kind: ServerKind, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<ServerKind>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(kind))));
    f()
}
