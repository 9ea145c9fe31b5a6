//! Passwords: special characters in them work, and no part of one is ever
//! printed (spec, guarantee 8), whatever the URL looks like, wherever it
//! comes from, at every log level.

use std::process::Output;

use crate::support::*;

/// The characters that used to break the URL list or the redaction.
const SPECIALS: [char; 5] = ['/', ',', '@', ':', '#'];

/// The two halves of every test password: neither may ever be printed.
const PARTS: [&str; 2] = ["Pa55", "w0rdX"];

fn password(special: char) -> String {
    format!("{}{special}{}", PARTS[0], PARTS[1])
}

/// `password` with its special character percent-encoded.
fn encoded(special: char) -> String {
    format!("{}%{:02X}{}", PARTS[0], u32::from(special), PARTS[1])
}

/// The password as it can stand in a URL's userinfo: raw where the URL
/// parser accepts it, percent-encoded where it would end the authority.
fn in_userinfo(special: char) -> String {
    match special {
        '/' | '#' => encoded(special),
        _ => password(special),
    }
}

fn assert_no_secret(o: &Output, case: &str) {
    let (out, err) = (stdout(o), stderr(o));
    for part in PARTS {
        assert!(
            !out.contains(part) && !err.contains(part),
            "{case}: {part:?} was printed\nstdout:\n{out}\nstderr:\n{err}"
        );
    }
}

/// A comma in a password works in REDLOCK_REDIS (the list is split only
/// where a new URL begins) and in --redis (never split); so do the other
/// special characters, raw where a URL allows them, else percent-encoded.
#[test]
fn special_characters_in_passwords_authenticate() {
    for special in SPECIALS {
        let server = RedisServer::start_with_password(&password(special));
        let url = format!(
            "redis://:{}@127.0.0.1:{}",
            in_userinfo(special),
            server.port
        );
        let k = key("auth");
        let env =
            output(rr_urls(std::slice::from_ref(&url)).args(["-vvv", "--key", &k, "--", "true"]));
        let flag = output(rr_urls(&[]).args(["--redis", &url, "-vvv", "--key", &k, "--", "true"]));
        for (how, o) in [("REDLOCK_REDIS", env), ("--redis", flag)] {
            let case = format!("{how} {url}");
            assert_eq!(o.status.code(), Some(0), "{case}: {}", stderr(&o));
            assert_no_secret(&o, &case);
        }
        assert_eq!(server.query::<i64>(&["EXISTS", &fence_key(&k)]), 1);
    }

    // A quorum list of URLs whose passwords have commas.
    let servers: Vec<_> = (0..3)
        .map(|_| RedisServer::start_with_password(&password(',')))
        .collect();
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("redis://:{}@127.0.0.1:{}", password(','), s.port))
        .collect();
    let k = key("auth-quorum");
    let o = output(rr_urls(&urls).args(["--key", &k, "--", "true"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_no_secret(&o, "quorum");
    for s in &servers {
        assert_eq!(s.query::<i64>(&["EXISTS", &fence_key(&k)]), 1);
    }
}

/// Every shape a password can come in, well-formed or not, for a server
/// at `port`: raw and percent-encoded, with and without a user name, in a
/// query, in URLs that do not parse, with no scheme or a wrong one.
fn urls_with_passwords(port: u16) -> Vec<String> {
    let mut urls = Vec::new();
    for special in SPECIALS {
        let (pw, enc) = (password(special), encoded(special));
        urls.extend([
            format!("redis://:{pw}@127.0.0.1:{port}"),
            format!("redis://alice:{pw}@127.0.0.1:{port}/0"),
            format!("redis://:{enc}@127.0.0.1:{port}"),
            format!("rediss://alice:{pw}@127.0.0.1:{port}"),
            format!("redis://127.0.0.1:{port}/0?password={pw}"),
            format!("unix:///nonexistent/redis.sock?db=0&pass={pw}"),
            format!("redis://:{pw}@[bad"),
            format!("redis://:{pw}@127.0.0.1:{port}x"),
            format!("http://:{pw}@127.0.0.1:{port}"),
            format!(":{pw}@127.0.0.1:{port}"),
        ]);
        // A userinfo without ':' is all hidden (with a ':' in it, the
        // first half would be a user name, which is shown).
        if special != ':' {
            urls.push(format!("redis://{pw}@127.0.0.1:{port}"));
        }
    }
    urls
}

/// Log levels: the default, -v, -vvv, REDLOCK_LOG=trace, JSON lines.
const LEVELS: [(&[&str], Option<&str>); 5] = [
    (&[], None),
    (&["-v"], None),
    (&["-vvv"], None),
    (&[], Some("trace")),
    (&["-vvv", "--log-format", "json"], None),
];

/// Run `sub` (a subcommand, or none for run mode) with `args` (which
/// name no URL), with `url` given through REDLOCK_REDIS and through
/// --redis, at each of `levels`: the run must fail as bad usage (2) or
/// unreachable (69) and print no part of the password.
fn assert_never_printed(
    url: &str,
    sub: Option<&str>,
    args: &[&str],
    levels: &[(&[&str], Option<&str>)],
) {
    for (flags, log) in levels {
        for through_env in [true, false] {
            let mut cmd = if through_env {
                rr_urls(&[url.to_string()])
            } else {
                rr_urls(&[])
            };
            if let Some(level) = log {
                cmd.env("REDLOCK_LOG", level);
            }
            cmd.args(sub);
            if !through_env {
                cmd.args(["--redis", url]);
            }
            let o = output(cmd.args(*flags).args(args));
            let case = format!(
                "{} {url:?} {sub:?} {args:?} {flags:?} REDLOCK_LOG={log:?}",
                if through_env {
                    "REDLOCK_REDIS"
                } else {
                    "--redis"
                }
            );
            assert!(
                matches!(o.status.code(), Some(2 | 69)),
                "{case}: exit {:?}: {}",
                o.status.code(),
                stderr(&o)
            );
            assert!(!stderr(&o).is_empty(), "{case}: nothing on stderr");
            assert_no_secret(&o, &case);
        }
    }
}

/// Nothing listens on the port: connection refused, or bad usage.
#[test]
fn passwords_are_never_printed_for_an_unreachable_server() {
    let port = free_port();
    for url in urls_with_passwords(port) {
        assert_never_printed(&url, None, &["--key", "k", "--", "true"], &LEVELS);
        assert_never_printed(&url, Some("status"), &["--key", "k"], &LEVELS[..4]);
        assert_never_printed(
            &url,
            Some("release"),
            &["--key", "k", "--force"],
            &LEVELS[2..4],
        );
    }
    // Waiting out a --timeout: every retry is logged at -vvv.
    for special in SPECIALS {
        let url = format!("redis://alice:{}@127.0.0.1:{port}", password(special));
        assert_never_printed(
            &url,
            None,
            &["--timeout", "300ms", "--key", "k", "--", "true"],
            &LEVELS[2..3],
        );
    }
}

/// Usage errors clap itself prints, which quote the offending argument.
#[test]
fn passwords_are_never_printed_in_clap_errors() {
    let port = free_port();
    for url in urls_with_passwords(port) {
        let rdis = format!("--rdis={url}");
        let cases: [&[&str]; 4] = [
            &["--key", "k", &url, "--", "true"],
            &[&rdis, "--key", "k", "--", "true"],
            &["status", "--key", "k", &url],
            &["--key", "k", "--timeout", &url, "--", "true"],
        ];
        for args in cases {
            let o = output(rr_urls(&[]).args(args));
            let case = format!("{args:?}");
            assert_eq!(o.status.code(), Some(2), "{case}: {}", stderr(&o));
            assert!(o.stdout.is_empty(), "{case}: {}", stdout(&o));
            assert!(stderr(&o).starts_with("error:"), "{case}: {}", stderr(&o));
            assert_no_secret(&o, &case);
        }
    }
}

/// A real server that requires a password, given a wrong one (with the
/// default user and an ACL user name): refused (69), nothing printed.
#[test]
fn wrong_passwords_are_never_printed() {
    for special in SPECIALS {
        let server = RedisServer::start_with_password(&format!("R1ght{special}Pass9"));
        let port = server.port;
        for user in ["", "alice", "default"] {
            let url = format!("redis://{user}:{}@127.0.0.1:{port}", in_userinfo(special));
            assert_never_printed(&url, None, &["--key", "k", "--", "true"], &LEVELS);
            assert_never_printed(
                &url,
                None,
                &["--timeout", "300ms", "--key", "k", "--", "true"],
                &LEVELS[2..3],
            );
            assert_never_printed(&url, Some("status"), &["--key", "k"], &LEVELS[2..4]);
        }
        assert!(!server.exists("k"));
    }
}
