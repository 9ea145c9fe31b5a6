//! The CLI fuzz's cases: random option combinations and values, valid and
//! garbage, and the command each case runs (a shell script that checks,
//! with redis-cli, that it holds the lock).

use std::ffi::OsString;
use std::path::Path;

use super::Rng;
use super::fuzz_servers::{Servers, Target, Url};

/// Garbage no duration option accepts, in an option or in the environment
/// (checked against the binary): a case with one of these must exit 2.
pub const NEVER_VALID: &[&str] = &[
    "-5s",
    "5",
    "abc",
    "",
    " ",
    "1e3ms",
    "0x10s",
    "NaN",
    "∞",
    "5 parsecs",
    "1h -5m",
    "\n",
];

pub fn duration(rng: &mut Rng, valid: &[&str]) -> String {
    const GARBAGE: &[&str] = &[
        "-5s",
        "5",
        "abc",
        "",
        " ",
        "1e3ms",
        "1.5s",
        "0x10s",
        "NaN",
        "∞",
        "18446744073709551615s",
        "99999999999999999999999s",
        "584542046090y",
        "300000000000y",
        "100y",
        "10y 1s",
        "1ns",
        "0ns",
        "5 parsecs",
        "1h -5m",
        "\n",
        "9223372036854775807ms",
    ];
    if rng.chance(0.3) {
        rng.pick(GARBAGE).to_string()
    } else {
        rng.pick(valid).to_string()
    }
}

pub fn key(rng: &mut Rng, n: usize) -> String {
    match rng.below(10) {
        0 => format!("with space {n}"),
        1 => format!("new\nline {n}"),
        2 => format!("ключ-🔒-{n}"),
        3 => format!("{{brace}}{n}"),
        4 => format!("{{{n}"),
        5 => format!("}}{n}*?[x]"),
        6 => format!("{n}{}", "x".repeat(100_000)),
        7 => format!("tab\t{n}\r"),
        _ => format!("fuzz-{n}"),
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command: look up the key on every master with redis-cli, append
/// "ok" to the marker when a quorum holds REDLOCK_TOKEN, "bad N" if not.
pub fn script(targets: &[Target], marker: &Path, code: i32) -> String {
    let mut s = String::from("n=0\n");
    for t in targets {
        let args: Vec<String> = t.cli.iter().map(|a| shell_quote(a)).collect();
        s.push_str(&format!(
            "v=$(redis-cli {} --raw get \"$REDLOCK_KEY\" 2>/dev/null)\n\
             [ \"$v\" = \"$REDLOCK_TOKEN\" ] && n=$((n+1))\n",
            args.join(" ")
        ));
    }
    let quorum = targets.len() / 2 + 1;
    s.push_str(&format!(
        "if [ $n -ge {quorum} ]; then echo ok >> {m}; else echo \"bad $n\" >> {m}; fi\nexit {code}\n",
        m = shell_quote(&marker.display().to_string())
    ));
    s
}

/// One generated case.
pub struct Case {
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// Masters the command checks (all good URLs).
    pub targets: Vec<Target>,
    /// The command's own exit code.
    pub code: i32,
    pub conflict: Option<i32>,
    pub min_hold: bool,
    /// Built only from valid values: the command must run.
    pub sane: bool,
    pub prehold: bool,
    /// Why this case must be refused as bad usage (exit 2), if it must.
    pub must_refuse: Vec<String>,
}

pub fn generate(s: &Servers, rng: &mut Rng, n: usize, dir: &Path) -> Case {
    let sane = rng.chance(0.35);
    let p = |rng: &mut Rng, x: f64| !sane && rng.chance(x);
    let mut must_refuse: Vec<String> = Vec::new();
    let mut refuse_if = |bad: bool, why: String| {
        if bad {
            must_refuse.push(why);
        }
    };
    let mut args: Vec<OsString> = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let push = |a: &mut Vec<OsString>, k: &str, v: String| {
        a.push(k.into());
        a.push(v.into());
    };

    // Masters: one, or a quorum; sometimes a bad one among them.
    let count = *rng.pick(&[1, 1, 1, 2, 3]);
    let mut urls: Vec<Url> = (0..count).map(|_| s.good(rng)).collect();
    if p(rng, 0.35) {
        let i = rng.below(count as u64) as usize;
        urls[i] = s.bad(rng);
    }
    let reachable = urls.iter().filter(|u| u.target.is_some()).count() > count / 2;
    let slow = urls.iter().any(|u| u.slow);
    let joined: Vec<String> = urls.iter().map(|u| u.url.clone()).collect();
    if rng.chance(0.5) {
        env.push(("REDLOCK_REDIS".into(), joined.join(",")));
    } else {
        for u in &joined {
            push(
                &mut args,
                if rng.chance(0.5) { "-r" } else { "--redis" },
                u.clone(),
            );
        }
    }

    let k = if p(rng, 0.05) {
        String::new()
    } else {
        key(rng, n)
    };
    refuse_if(k.is_empty(), "an empty key".into());
    match rng.below(3) {
        0 => env.push(("REDLOCK_KEY".into(), k.clone())),
        1 => args.push(format!("--key={k}").into()),
        _ => push(&mut args, "-k", k.clone()),
    }

    let ttl_valid: &[&str] = if slow {
        &["1s", "2s"]
    } else {
        &["1s", "2s", "30s", "10y"]
    };
    let ttl = if sane {
        rng.pick(ttl_valid).to_string()
    } else {
        duration(rng, ttl_valid)
    };
    refuse_if(
        NEVER_VALID.contains(&ttl.as_str()),
        format!("--ttl {ttl:?}"),
    );
    if rng.chance(0.5) {
        env.push(("REDLOCK_TTL".into(), ttl.clone()));
    } else {
        push(&mut args, "--ttl", ttl.clone());
    }
    // Waiting is bounded when a master cannot answer.
    let timeouts: &[&str] = if reachable && !slow {
        &["0s", "1s", "inf", "forever", "10y", "1h 30m"]
    } else {
        &["0s", "300ms"]
    };
    let timeout = if sane {
        rng.pick(timeouts).to_string()
    } else {
        duration(rng, timeouts)
    };
    let mut waits = false;
    if rng.chance(0.7) {
        waits = timeout != "0s";
        refuse_if(
            NEVER_VALID.contains(&timeout.as_str()),
            format!("--timeout {timeout:?}"),
        );
        if rng.chance(0.5) {
            env.push(("REDLOCK_TIMEOUT".into(), timeout));
        } else {
            push(&mut args, "-t", timeout);
        }
    }
    if rng.chance(0.3) {
        let v = if sane {
            "100ms".into()
        } else {
            duration(rng, &["100ms", "200ms", "2s"])
        };
        refuse_if(
            NEVER_VALID.contains(&v.as_str()),
            format!("--refresh {v:?}"),
        );
        push(&mut args, "--refresh", v);
    }
    if rng.chance(0.3) {
        let v = if sane {
            "50ms".into()
        } else {
            duration(rng, &["50ms", "1s", "0s"])
        };
        refuse_if(
            NEVER_VALID.contains(&v.as_str()),
            format!("--kill-after {v:?}"),
        );
        push(&mut args, "--kill-after", v);
    }
    let mut min_hold = false;
    if rng.chance(0.2) {
        let v = if sane {
            "300ms".into()
        } else {
            duration(rng, &["0s", "300ms", "1s"])
        };
        min_hold = true;
        refuse_if(
            NEVER_VALID.contains(&v.as_str()),
            format!("--min-hold {v:?}"),
        );
        push(&mut args, "--min-hold", v);
    }
    let mut conflict = None;
    if rng.chance(0.3) {
        let e = if sane {
            rng.below(256).to_string()
        } else {
            rng.pick(&["0", "1", "75", "200", "255", "256", "-1", "x", "", "1e2"])
                .to_string()
        };
        conflict = e.parse::<u8>().ok().map(i32::from);
        refuse_if(conflict.is_none(), format!("-E {e:?}"));
        push(&mut args, "-E", e);
    }
    // -v and -q conflict (exit 2): only chaotic cases mix them.
    let mut verbose = false;
    for (chance, flag) in [(0.2, "-v"), (0.1, "-vv"), (0.1, "-q")] {
        if rng.chance(chance) && !(sane && flag == "-q" && verbose) {
            refuse_if(flag == "-q" && verbose, "-v with -q".into());
            verbose |= flag != "-q";
            args.push(flag.into());
        }
    }
    if rng.chance(0.15) {
        let f = if sane {
            "json"
        } else {
            rng.pick(&["json", "text", "xml"])
        };
        refuse_if(f == "xml", "--log-format xml".into());
        push(&mut args, "--log-format", f.into());
    }
    let mut extra = false;
    if p(rng, 0.1) {
        let a = *rng.pick(&["--bogus", "--ttl", "-Z", "--", "--timeout=1s"]);
        refuse_if(a == "--bogus" || a == "-Z", format!("unknown option {a}"));
        // The others may change how what follows parses ("--" turns the
        // command's own "--" into the program name).
        extra = true;
        args.push(a.into());
        env.push((
            "REDLOCK_LOG".into(),
            rng.pick(&["trace", "nonsense[[", "debug"]).to_string(),
        ));
    }

    // The command, in one of its forms.
    let targets: Vec<Target> = urls.iter().filter_map(|u| u.target.clone()).collect();
    let code = *rng.pick(&[0, 0, 1, 3, 42, 255]);
    let marker = dir.join(format!("marker-{n}"));
    let path = dir.join(format!("case-{n}.sh"));
    let body = script(&targets, &marker, code);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sh_line = format!("sh {}", shell_quote(&path.display().to_string()));
    let forms = if sane { 5 } else { 10 };
    let form = rng.below(forms);
    let why = match form {
        5 => Some("both --shell and a -- command"),
        6 => Some("no command"),
        9 => Some("an empty program name"),
        _ => None,
    };
    if let Some(why) = why.filter(|_| !extra) {
        refuse_if(true, why.into());
    }
    match form {
        0 => args.extend(["--".into(), "sh".into(), path.clone().into()]),
        1 => args.extend(["--".into(), path.clone().into()]),
        2 => args.extend(["--shell".into(), sh_line.into()]),
        3 => args.extend(["-c".into(), body.into()]),
        4 => args.push(format!("--shell={sh_line}").into()),
        5 => args.extend(["--shell".into(), sh_line.into(), "--".into(), "true".into()]),
        6 => {}
        7 => args.extend(["--".into(), "/nonexistent/command".into()]),
        8 => {
            let f = dir.join(format!("noexec-{n}"));
            std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
            args.extend(["--".into(), f.into()]);
        }
        _ => args.extend(["--".into(), "".into()]),
    }
    Case {
        args,
        env,
        targets,
        code,
        conflict,
        min_hold,
        sane: sane && reachable,
        prehold: reachable && rng.chance(0.15) && (!sane || waits),
        must_refuse,
    }
}

/// A case, printable for reproduction (long keys shortened).
pub fn show(c: &Case) -> String {
    let short = |s: &str| {
        if s.len() > 80 {
            format!(
                "{}…({} bytes)",
                s.chars().take(40).collect::<String>(),
                s.len()
            )
        } else {
            s.to_string()
        }
    };
    let env: Vec<String> = c
        .env
        .iter()
        .map(|(k, v)| format!("{k}={:?}", short(v)))
        .collect();
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| format!("{:?}", short(&a.to_string_lossy())))
        .collect();
    format!("{} redlock-run {}", env.join(" "), args.join(" "))
}
