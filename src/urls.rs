//! Redis URLs as text: where a list of them splits, how to print one
//! without its password, and the parts of a Sentinel or Cluster URL (which
//! `config` checks and turns into an endpoint).
//!
//! A password may hold any character, commas included, so a list in
//! REDLOCK_REDIS is split only before a comma that starts a new URL. And
//! no part of a password is ever printed (docs/guarantees.md, guarantee 9),
//! also for a URL that does not parse: redaction works on the text, never
//! on a parse.

/// The schemes a new URL in a list starts with.
pub(crate) const SCHEMES: [&str; 10] = [
    "redis://",
    "rediss://",
    "unix://",
    "redis+unix://",
    "valkey://",
    "valkeys://",
    "redis+sentinel://",
    "rediss+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
];

/// Split a comma-separated list of URLs, only before a comma followed
/// (after optional blanks) by one of [`SCHEMES`]: a comma anywhere else,
/// as in a password, stays in its URL.
pub(crate) fn split_list(list: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let mut start = 0;
    for (comma, _) in list.match_indices(',') {
        let next = list[comma + 1..].trim_start();
        if SCHEMES.iter().any(|s| next.starts_with(s)) {
            urls.push(list[start..comma].to_string());
            start = comma + 1;
        }
    }
    urls.push(list[start..].to_string());
    urls
}

/// Hide the password in a URL, parsed or not: everything between `://`
/// (or the start, without a scheme) and the URL's last `@` is userinfo,
/// shown as `user:***` (the user name is what comes before its first
/// `:`) or `***`; and the value of every `pass`/`password`/`*_password`
/// parameter
/// (after any `?` or `&`, up to the next `&`) is shown as `***`. A
/// password holding `/`, `@`, `?` or `#` unencoded is hidden whole: the
/// last `@`, not the first `/`, ends it. Where the two overlap (an `@` in
/// a query password) more is hidden, never less.
pub(crate) fn redact(url: &str) -> String {
    let mut hidden = vec![false; url.len()];
    let start = url.find("://").map_or(0, |i| i + 3);
    if let Some(at) = url[start..].rfind('@').map(|i| start + i) {
        let from = url[start..at].find(':').map_or(start, |c| start + c + 1);
        hidden[from..at].fill(true);
    }
    for (d, _) in url.match_indices(['?', '&']) {
        let end = url[d + 1..].find('&').map_or(url.len(), |e| d + 1 + e);
        if let Some((key, _)) = url[d + 1..end].split_once('=') {
            let key_lc = key.to_ascii_lowercase();
            if key_lc == "pass" || key_lc == "password" || key_lc.ends_with("_password") {
                hidden[d + 1 + key.len() + 1..end].fill(true);
            }
        }
    }
    let mut out = String::with_capacity(url.len());
    let mut was_hidden = false;
    for (i, c) in url.char_indices() {
        if !hidden[i] {
            out.push(c);
        } else if !was_hidden {
            out.push_str("***");
        }
        was_hidden = hidden[i];
    }
    out
}

/// [`redact`] every URL-looking word (`scheme://` up to the next blank
/// or control character) in free text, such as an error clap rendered.
/// A quote just before the scheme that also closes the word is kept.
pub(crate) fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        let start = rest[..sep]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
            .last()
            .map_or(sep, |(i, _)| i);
        let end = rest[sep..]
            .find(|c: char| c.is_whitespace() || c.is_control())
            .map_or(rest.len(), |i| sep + i);
        let mut word = &rest[start..end];
        let quote = rest[..start]
            .chars()
            .next_back()
            .filter(|q| matches!(q, '\'' | '"' | '`'));
        if let Some(q) = quote.filter(|q| word.len() > 1 && word.ends_with(*q)) {
            word = &word[..word.len() - q.len_utf8()];
        }
        out.push_str(&rest[..start]);
        out.push_str(&redact(word));
        rest = &rest[start + word.len()..];
    }
    out.push_str(rest);
    out
}

/// A `redis+sentinel://` or `redis+cluster://` URL (and `rediss+`), after
/// the spec: `[[user]:password@]host:port[,host:port]...` then, for
/// Sentinel, `[/service[/db]]` (default `mymaster`, 0) and optionally
/// `?sentinel_username=..&sentinel_password=..` for Sentinels that want
/// their own credentials. The user and password are the data nodes'.
pub(crate) struct MultiUrl<'a> {
    /// `redis` or `rediss`: the scheme of each node's plain URL.
    base: &'static str,
    /// Up to and with the last `@` (as in [`redact`]), or empty.
    userinfo: &'a str,
    /// The comma-separated `host:port` list.
    hosts: &'a str,
    /// Sentinel's service name; `None` for Cluster.
    pub(crate) service: Option<String>,
    db: i64,
    /// `user:password@` for the Sentinels themselves, or empty.
    sentinel_auth: String,
}

/// One host of a [`MultiUrl`] as plain URLs, for the caller to check like
/// any other.
pub(crate) struct HostUrls {
    /// The data node: `redis://userinfo@host/db`.
    pub(crate) node: String,
    /// Sentinel only: the Sentinel at this address, with its credentials.
    pub(crate) sentinel: Option<String>,
}

/// Split a [`MultiUrl`] into its parts; `scheme` is the one it starts with.
/// Errors never quote the URL (the caller adds its redacted form).
pub(crate) fn parse_multi<'a>(url: &'a str, scheme: &str) -> Result<MultiUrl<'a>, String> {
    let sentinel = scheme.contains("+sentinel");
    let base = if scheme.starts_with("rediss") {
        "rediss"
    } else {
        "redis"
    };
    let rest = &url[scheme.len()..];
    // As in `redact`: the last '@' ends the userinfo.
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    if hosts.is_empty() {
        return Err("no host:port given".into());
    }
    let sentinel_auth = match sentinel_credentials(query, sentinel)? {
        (u, p) if u.is_empty() && p.is_empty() => String::new(),
        (u, p) => format!("{u}:{p}@"),
    };
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let (service, db) = if sentinel {
        let service = parts.next().unwrap_or("mymaster").to_string();
        let db = match parts.next() {
            None => 0,
            Some(d) => d
                .parse::<i64>()
                .map_err(|_| "the database after the service name must be a number".to_string())?,
        };
        (Some(service), db)
    } else {
        (None, 0)
    };
    if parts.next().is_some() {
        return Err(if sentinel {
            "expected at most /service/db after the hosts".into()
        } else {
            "a Cluster URL has no path (Cluster has only database 0)".into()
        });
    }
    Ok(MultiUrl {
        base,
        userinfo,
        hosts,
        service,
        db,
        sentinel_auth,
    })
}

/// The Sentinels' own user and password from a query string: the only
/// parameters a Sentinel URL takes, and a Cluster URL takes none.
fn sentinel_credentials(query: &str, sentinel: bool) -> Result<(&str, &str), String> {
    let mut auth = ("", "");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sentinel_username", v)) if sentinel => auth.0 = v,
            Some(("sentinel_password", v)) if sentinel => auth.1 = v,
            _ => {
                let name = pair.split_once('=').map_or(pair, |(k, _)| k);
                return Err(format!("unknown parameter {:?}", redact(name)));
            }
        }
    }
    Ok(auth)
}

impl MultiUrl<'_> {
    /// Each host in order as plain URLs, or why its text is not a host.
    pub(crate) fn hosts(&self) -> impl Iterator<Item = Result<HostUrls, String>> + '_ {
        self.hosts.split(',').map(|host| {
            if host.is_empty() || host.contains(['/', '?', '#']) {
                return Err("expected host:port[,host:port]...".to_string());
            }
            let (base, userinfo, db) = (self.base, self.userinfo, self.db);
            Ok(HostUrls {
                node: format!("{base}://{userinfo}{host}/{db}"),
                sentinel: self
                    .service
                    .as_ref()
                    .map(|_| format!("{base}://{}{host}", self.sentinel_auth)),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_url_splits_into_each_hosts_plain_urls_in_order() {
        let url = "rediss+sentinel://u:p@h1:1,h2:2/svc/3?sentinel_username=su&sentinel_password=sp";
        let m = parse_multi(url, "rediss+sentinel://").unwrap();
        assert_eq!(m.service.as_deref(), Some("svc"));
        let hosts: Vec<_> = m.hosts().map(|h| h.map(|h| (h.node, h.sentinel))).collect();
        let both = |n: &str, s: &str| Ok((n.to_string(), Some(s.to_string())));
        assert_eq!(
            hosts,
            [
                both("rediss://u:p@h1:1/3", "rediss://su:sp@h1:1"),
                both("rediss://u:p@h2:2/3", "rediss://su:sp@h2:2"),
            ]
        );
        // A Cluster URL: no service, no Sentinels; a bad host is an error
        // in its place, after the hosts before it.
        let m = parse_multi("redis+cluster://h1:1,,h2:2", "redis+cluster://").unwrap();
        assert_eq!(m.service, None);
        let hosts: Vec<_> = m.hosts().map(|h| h.map(|h| (h.node, h.sentinel))).collect();
        assert_eq!(
            hosts,
            [
                Ok(("redis://h1:1/0".to_string(), None)),
                Err("expected host:port[,host:port]...".to_string()),
                Ok(("redis://h2:2/0".to_string(), None)),
            ]
        );
        assert!(
            parse_multi(
                "redis+cluster://h:1?sentinel_password=x",
                "redis+cluster://"
            )
            .is_err()
        );
    }

    #[test]
    fn passwords_never_show() {
        let cases = [
            ("redis://:hunter2@h:1/0", "redis://:***@h:1/0"),
            ("rediss://u:p@h", "rediss://u:***@h"),
            ("redis://h:6379", "redis://h:6379"),
            ("redis://h:6379/0", "redis://h:6379/0"),
            ("redis://u@h", "redis://***@h"),
            // '/', '@', ':', '#', '?' and ',' in a raw password.
            ("redis://:hun/ter2@h:1", "redis://:***@h:1"),
            ("redis://u:hu@n@ter2@h:1/0", "redis://u:***@h:1/0"),
            ("redis://:a:b:c@h", "redis://:***@h"),
            ("redis://:a#b@h", "redis://:***@h"),
            ("redis://:a?password=b@h", "redis://:***"),
            ("redis://:a?b@h/?pass=c", "redis://:***@h/?pass=***"),
            ("redis://:hunter,2secret@h:1", "redis://:***@h:1"),
            // Malformed, or no scheme.
            ("redis://:p/w@[bad", "redis://:***@[bad"),
            (":pw@h:1", ":***@h:1"),
            ("u:pw@h", "u:***@h"),
            ("http://:pw@h", "http://:***@h"),
            // Query parameters.
            (
                "unix:///tmp/r.sock?db=1&pass=x",
                "unix:///tmp/r.sock?db=1&pass=***",
            ),
            ("unix:///s?PASSWORD=x&db=1", "unix:///s?PASSWORD=***&db=1"),
            // An '@' in a query password: more is hidden, never less.
            ("unix:///s?pass=a@b#c&db=1", "unix://***&db=1"),
            ("redis://h/0?password=a/b", "redis://h/0?password=***"),
            (
                "redis+sentinel://:p@h:1,h:2/s?sentinel_password=q&x=1",
                "redis+sentinel://:***@h:1,h:2/s?sentinel_password=***&x=1",
            ),
            (
                "redis://h/0?passwd=x&bypass=y",
                "redis://h/0?passwd=x&bypass=y",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
            assert_eq!(redact(want), want, "idempotent: {want}");
        }
    }

    #[test]
    fn urls_in_text_are_redacted() {
        assert_eq!(
            redact_text("error: unexpected argument 'redis://:a b@h' found"),
            "error: unexpected argument 'redis://:a b@h' found",
            "a blank ends the word: the caller replaces whole arguments first"
        );
        assert_eq!(
            redact_text("error: unexpected argument 'redis://:p/w@h:1' found\n"),
            "error: unexpected argument 'redis://:***@h:1' found\n"
        );
        assert_eq!(
            redact_text("a \"rediss://u:p@h\", b=unix:///s?pass=x\x1b[0m, c://"),
            "a \"rediss://u:***@h\", b=unix:///s?pass=***\x1b[0m, c://"
        );
        assert_eq!(
            redact_text("x --redis=redis://:p@w@h y"),
            "x --redis=redis://:***@h y"
        );
        assert_eq!(redact_text("no urls: a@b, x:y"), "no urls: a@b, x:y");
        assert_eq!(redact_text("ünïcode://:p@h ✓"), "ünïcode://:***@h ✓");
    }

    #[test]
    fn a_list_splits_only_where_a_new_url_begins() {
        assert_eq!(split_list("redis://h:1"), ["redis://h:1"]);
        assert_eq!(
            split_list("redis://:a,b@h:1,rediss://u:c,,d@h:2, unix:///s?pass=e,f"),
            [
                "redis://:a,b@h:1",
                "rediss://u:c,,d@h:2",
                " unix:///s?pass=e,f"
            ]
        );
        // Every scheme starts a new URL.
        for s in SCHEMES {
            let list = format!("redis://:p,w@h,{s}x");
            assert_eq!(
                split_list(&list),
                ["redis://:p,w@h".to_string(), format!("{s}x")]
            );
        }
        // A comma before something that is not a URL stays put (the URL
        // is then refused as invalid, not silently cut in two).
        assert_eq!(split_list("redis://h:1,"), ["redis://h:1,"]);
        assert_eq!(split_list("redis://h:1,h2:2"), ["redis://h:1,h2:2"]);
        assert_eq!(split_list(""), [""]);
    }
}
