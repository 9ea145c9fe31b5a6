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
