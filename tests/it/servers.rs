//! Which servers the tool accepts, and how it finds out: `HELLO` on each
//! new connection, in the round trip the redis crate's `CLIENT SETINFO`
//! used to take; `INFO server` when HELLO is not there.

use crate::support::*;

/// `INFO commandstats` as command → calls (on the test's connection:
/// a new one would count the test's own connecting).
fn calls(conn: &mut redis::Connection) -> std::collections::HashMap<String, u64> {
    let text: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let n = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), n))
        })
        .collect()
}

/// One run on a fresh server sends one HELLO and no CLIENT command: the
/// server check replaces `CLIENT SETINFO` (two commands in one round
/// trip on connecting), it does not add a round trip. On each server of
/// the matrix.
#[test]
fn the_server_check_is_one_hello_instead_of_client_setinfo() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &[]);
        let mut conn = server.conn();
        let _: String = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut conn)
            .unwrap();
        let o = output(rr(&server).args(["--key", &key("hello"), "--", "true"]));
        assert_eq!(o.status.code(), Some(0), "{kind}: {}", stderr(&o));
        let c = calls(&mut conn);
        assert_eq!(c.get("hello"), Some(&1), "{kind}: {c:?}");
        assert!(
            !c.keys().any(|k| k.starts_with("client")),
            "{kind}: CLIENT sent: {c:?}"
        );
    }
}

/// With HELLO renamed away, `INFO server` names the server: runs, status
/// and list work on each kind.
#[test]
fn without_hello_info_names_the_server() {
    for kind in ServerKind::ALL {
        let server = RedisServer::start_kind(kind, &["--rename-command", "HELLO", ""]);
        let k = key("no-hello");
        let o = output(rr(&server).args(["--key", &k, "--", "sh", "-c", "exit 3"]));
        assert_eq!(o.status.code(), Some(3), "{kind}: {}", stderr(&o));
        let o = output(rr(&server).args(["status", "--key", &k]));
        assert_eq!(o.status.code(), Some(1), "{kind}: {}", stderr(&o));
        let o = output(rr(&server).arg("list"));
        assert_eq!(o.status.code(), Some(0), "{kind}: {}", stderr(&o));
    }
}
