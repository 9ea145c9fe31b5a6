
use builtin;
use str;

set edit:completion:arg-completer[redlock-run] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'redlock-run'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'redlock-run'= {
            cand -k 'The lock''s name; the lock lives at exactly this Redis key'
            cand --key 'The lock''s name; the lock lives at exactly this Redis key'
            cand -r 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis-file 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS'
            cand -t 'How long to wait for the lock: 0s = one attempt (cron: skip if another host holds it); `inf` = wait forever. A wait longer than a second shows its progress on stderr (who holds the lock, for how long we waited, our place in the queue); -q silences it'
            cand --timeout 'How long to wait for the lock: 0s = one attempt (cron: skip if another host holds it); `inf` = wait forever. A wait longer than a second shows its progress on stderr (who holds the lock, for how long we waited, our place in the queue); -q silences it'
            cand --ttl 'Lease length: if the holder vanishes, the lock frees itself this long after the last refresh'
            cand --refresh 'How often the lease is renewed while the command runs [default: ttl/3]; must be < ttl'
            cand --min-hold 'Keep the lock at least this long after acquiring it, even if the command ends sooner (redlock-run itself exits at once). Stops a late-firing cron on another host from running the same job again'
            cand --kill-after 'Grace between SIGTERM and SIGKILL when the command must be stopped [default: min(5s, ttl/3), clamped to fit]; 2 x refresh + 100ms + kill-after + 100ms + drift must not exceed ttl'
            cand --limit 'Let up to N hold the lock at once, each with its own lease and fencing token; every instance using KEY must give the same N (a mismatch exits 2). N > 1 needs a single --redis URL'
            cand --wait-replicas 'After acquiring and after each renewal, wait until N replicas acknowledged the write (WAIT, at most ttl/10 clamped to 150ms..1s, taken from the renewal budget); an acquisition not acknowledged in time is undone, a renewal not acknowledged is a failed renewal. A failover to a replica that acknowledged keeps the lock'
            cand -E 'Exit code when the lock was not acquired within --timeout'
            cand --conflict-exit-code 'Exit code when the lock was not acquired within --timeout'
            cand -c 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv'
            cand --shell 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv'
            cand --label 'A label stored with the lock and shown by `status` (what this run is, for the operator; not a secret)'
            cand --log-format 'Log line format: one line per event; json for log shippers'
            cand --record-args 'Store the whole command line with the lock (shown by `status` on any host that can read this Redis). By default only the program''s name is stored: arguments often carry tokens'
            cand -v 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand --verbose 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand schedule 'Run the command on a schedule; each tick runs at most once across every instance that shares the key'
            cand status 'Show whether KEY is held, by whom, for how long, and the last fencing token'
            cand release 'Delete the lock whoever holds it (break glass after a crash). Needs --force'
            cand doctor 'Check the Redis servers a key would use: one line per check'
            cand list 'List the locks held through this tool whose key matches PATTERN'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'redlock-run;schedule'= {
            cand -k 'The lock''s name; the lock lives at exactly this Redis key'
            cand --key 'The lock''s name; the lock lives at exactly this Redis key'
            cand -r 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis-file 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS'
            cand --every 'Interval between ticks; ticks fall on wall-clock multiples of it since the Unix epoch, so every host agrees which tick is which'
            cand --cron 'Cron expression instead of --every: 6 fields (with seconds, e.g. ''*/10 * * * * *'') or 5 (minute first); no year field'
            cand --tz 'Time zone for --cron, an IANA name such as Europe/Paris [default: UTC]'
            cand --ttl 'Lease length: if the holder vanishes, the lock frees itself this long after the last refresh'
            cand --refresh 'How often the lease is renewed while the command runs [default: ttl/3]; must be < ttl'
            cand --min-hold 'Keep the lock at least this long after acquiring it, even if the command ends sooner (redlock-run itself exits at once). Stops a late-firing cron on another host from running the same job again'
            cand --kill-after 'Grace between SIGTERM and SIGKILL when the command must be stopped [default: min(5s, ttl/3), clamped to fit]; 2 x refresh + 100ms + kill-after + 100ms + drift must not exceed ttl'
            cand --limit 'Let up to N hold the lock at once, each with its own lease and fencing token; every instance using KEY must give the same N (a mismatch exits 2). N > 1 needs a single --redis URL'
            cand --wait-replicas 'After acquiring and after each renewal, wait until N replicas acknowledged the write (WAIT, at most ttl/10 clamped to 150ms..1s, taken from the renewal budget); an acquisition not acknowledged in time is undone, a renewal not acknowledged is a failed renewal. A failover to a replica that acknowledged keeps the lock'
            cand -c 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv'
            cand --shell 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv'
            cand --label 'A label stored with the lock and shown by `status` (what this run is, for the operator; not a secret)'
            cand --log-format 'Log line format: one line per event; json for log shippers'
            cand --record-args 'Store the whole command line with the lock (shown by `status` on any host that can read this Redis). By default only the program''s name is stored: arguments often carry tokens'
            cand -v 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand --verbose 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;status'= {
            cand -k 'The lock''s name; the lock lives at exactly this Redis key'
            cand --key 'The lock''s name; the lock lives at exactly this Redis key'
            cand -r 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis-file 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS'
            cand --log-format 'Log line format: one line per event; json for log shippers'
            cand --json 'Print one JSON object instead of text'
            cand -v 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand --verbose 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;release'= {
            cand -k 'The lock''s name; the lock lives at exactly this Redis key'
            cand --key 'The lock''s name; the lock lives at exactly this Redis key'
            cand -r 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis-file 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS'
            cand --log-format 'Log line format: one line per event; json for log shippers'
            cand --force 'Really delete the lock, whoever holds it'
            cand -v 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand --verbose 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;doctor'= {
            cand -k 'The lock''s name; the lock lives at exactly this Redis key'
            cand --key 'The lock''s name; the lock lives at exactly this Redis key'
            cand -r 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS'
            cand --redis-file 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS'
            cand --log-format 'Log line format: one line per event; json for log shippers'
            cand --json 'Print one JSON object instead of text'
            cand -v 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand --verbose 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;list'= {
            cand -r 'Redis URL, as for the other commands (see `redlock-run --help`); repeat for a Redlock quorum over independent masters'
            cand --redis 'Redis URL, as for the other commands (see `redlock-run --help`); repeat for a Redlock quorum over independent masters'
            cand --redis-file 'Read the Redis URLs from this file instead, as for the other commands (see `redlock-run --help`)'
            cand --max 'Show at most this many locks'
            cand --log-format 'Log line format: one line per event; json for log shippers'
            cand --json 'Print one JSON array of objects shaped like `status --json`'
            cand -v 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand --verbose 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'redlock-run;help'= {
            cand schedule 'Run the command on a schedule; each tick runs at most once across every instance that shares the key'
            cand status 'Show whether KEY is held, by whom, for how long, and the last fencing token'
            cand release 'Delete the lock whoever holds it (break glass after a crash). Needs --force'
            cand doctor 'Check the Redis servers a key would use: one line per check'
            cand list 'List the locks held through this tool whose key matches PATTERN'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'redlock-run;help;schedule'= {
        }
        &'redlock-run;help;status'= {
        }
        &'redlock-run;help;release'= {
        }
        &'redlock-run;help;doctor'= {
        }
        &'redlock-run;help;list'= {
        }
        &'redlock-run;help;completions'= {
        }
        &'redlock-run;help;help'= {
        }
    ]
    $completions[$command]
}
