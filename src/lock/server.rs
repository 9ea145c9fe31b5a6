//! Which server a connection reached, and whether it is one the tool
//! supports: Redis 6.2 and later, Valkey 7.2 and later.
//!
//! Checked on each new connection with `HELLO` (no arguments: it exists
//! from Redis 6.2, so an error there already means an older server or a
//! renamed command; then `INFO server` names the version), sent with the
//! connection's first request so that it costs no round trip of its own
//! (see `Node::request`).

use std::collections::HashMap;
use std::fmt;

/// The oldest Redis the tool supports (the scripts and the tests: 6.2).
pub(crate) const OLDEST_REDIS: (u32, u32) = (6, 2);
/// The oldest Valkey (its first release, 7.2, is Redis 7.2 compatible).
pub(crate) const OLDEST_VALKEY: (u32, u32) = (7, 2);

/// A server as it names itself: `Valkey 9.1.2`, `Redis 6.2.14`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    pub(crate) valkey: bool,
    /// The version as the server gives it.
    pub(crate) version: String,
}

impl Server {
    /// From `HELLO`'s `server` (`redis`, `valkey`) and `version` fields.
    pub(crate) fn new(name: &str, version: &str) -> Self {
        Server {
            valkey: name.eq_ignore_ascii_case("valkey"),
            version: version.to_string(),
        }
    }

    /// From `INFO server`'s fields: `server_name:valkey` with
    /// `valkey_version` (Valkey 8 and later report `redis_version:7.2.4`
    /// for compatibility), else `redis_version`.
    pub(crate) fn from_info(info: &HashMap<String, String>) -> Option<Self> {
        match (info.get("server_name"), info.get("valkey_version")) {
            (Some(name), Some(v)) => Some(Server::new(name, v)),
            _ => info.get("redis_version").map(|v| Server::new("redis", v)),
        }
    }

    /// (major, minor, patch); a part that is not a number counts as 0.
    pub(crate) fn numbers(&self) -> (u32, u32, u32) {
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.trim().parse::<u32>().unwrap_or(0));
        (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }

    /// The oldest supported release of this server.
    pub(crate) fn oldest(&self) -> (u32, u32) {
        if self.valkey {
            OLDEST_VALKEY
        } else {
            OLDEST_REDIS
        }
    }

    pub(crate) fn is_supported(&self) -> bool {
        let (major, minor, _) = self.numbers();
        (major, minor) >= self.oldest()
    }

    /// Why it is refused, when it is: `Redis 6.0.20 is older than 6.2, the
    /// oldest supported ...`.
    pub(crate) fn refusal(&self) -> Option<String> {
        (!self.is_supported()).then(|| {
            format!(
                "{self} is older than the oldest supported server ({}); upgrade it",
                supported()
            )
        })
    }
}

/// `Redis 6.2 or later, Valkey 7.2 or later`.
pub(crate) fn supported() -> String {
    format!(
        "Redis {}.{} or later, Valkey {}.{} or later",
        OLDEST_REDIS.0, OLDEST_REDIS.1, OLDEST_VALKEY.0, OLDEST_VALKEY.1
    )
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.valkey { "Valkey" } else { "Redis" };
        write!(
            f,
            "{name} {}",
            crate::display::escape_controls(&self.version)
        )
    }
}

/// `INFO` text as field → value.
pub(crate) fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `HELLO`'s reply (a map in RESP3, a flat list of pairs in RESP2).
pub(crate) fn from_hello(reply: &redis::Value) -> Option<Server> {
    use redis::Value;
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let pairs: Vec<(String, &Value)> = match reply {
        Value::Map(m) => m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect(),
        Value::Array(a) => a
            .chunks(2)
            .filter_map(|p| Some((text(p.first()?)?, p.get(1)?)))
            .collect(),
        _ => return None,
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| text(v))
    };
    Some(Server::new(&field("server")?, &field("version")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_supported_servers_are_redis_6_2_and_valkey_7_2() {
        let redis = |v: &str| Server::new("redis", v);
        let valkey = |v: &str| Server::new("valkey", v);
        for (s, ok) in [
            (redis("6.2.0"), true),
            (redis("6.2.14"), true),
            (redis("7.0.15"), true),
            (redis("10.0.0"), true),
            (redis("6.0.20"), false),
            (redis("6.1.99"), false),
            (redis("5.0.14"), false),
            (redis("2.8.24"), false),
            (redis(""), false),
            (valkey("7.2.4"), true),
            (valkey("9.1.2"), true),
            (valkey("7.1.0"), false),
        ] {
            assert_eq!(s.is_supported(), ok, "{s}");
            assert_eq!(s.refusal().is_none(), ok, "{s}");
        }
        assert_eq!(
            redis("6.0.20").refusal().unwrap(),
            "Redis 6.0.20 is older than the oldest supported server \
             (Redis 6.2 or later, Valkey 7.2 or later); upgrade it"
        );
        assert_eq!(valkey("9.1.2").to_string(), "Valkey 9.1.2");
        assert_eq!(redis("6.2.1\x1b[2J").to_string(), "Redis 6.2.1\\x1b[2J");
    }

    #[test]
    fn info_names_valkey_by_its_own_version() {
        let valkey = parse_info(
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\n",
        );
        assert_eq!(
            Server::from_info(&valkey).unwrap().to_string(),
            "Valkey 9.1.2"
        );
        let redis = parse_info("# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n");
        assert_eq!(
            Server::from_info(&redis).unwrap().to_string(),
            "Redis 6.2.14"
        );
        assert_eq!(Server::from_info(&HashMap::new()), None);
    }

    #[test]
    fn hello_in_both_protocols() {
        use redis::Value;
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![
            b("server"),
            b("valkey"),
            b("version"),
            b("9.1.2"),
            b("proto"),
            Value::Int(2),
        ]);
        assert_eq!(from_hello(&resp2).unwrap().to_string(), "Valkey 9.1.2");
        let resp3 = Value::Map(vec![(b("server"), b("redis")), (b("version"), b("7.0.15"))]);
        assert_eq!(from_hello(&resp3).unwrap().to_string(), "Redis 7.0.15");
        assert_eq!(from_hello(&Value::Nil), None);
    }
}
