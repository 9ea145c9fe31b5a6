
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'redlock-run' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'redlock-run'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'redlock-run' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'How long to wait for the lock: 0s = one attempt (cron: skip if another host holds it); `inf` = wait forever. A wait longer than a second shows its progress on stderr (who holds the lock, for how long we waited, our place in the queue); -q silences it')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for the lock: 0s = one attempt (cron: skip if another host holds it); `inf` = wait forever. A wait longer than a second shows its progress on stderr (who holds the lock, for how long we waited, our place in the queue); -q silences it')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Lease length: if the holder vanishes, the lock frees itself this long after the last refresh')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'How often the lease is renewed while the command runs [default: ttl/3]; must be < ttl')
            [CompletionResult]::new('--min-hold', '--min-hold', [CompletionResultType]::ParameterName, 'Keep the lock at least this long after acquiring it, even if the command ends sooner (redlock-run itself exits at once). Stops a late-firing cron on another host from running the same job again')
            [CompletionResult]::new('--kill-after', '--kill-after', [CompletionResultType]::ParameterName, 'Grace between SIGTERM and SIGKILL when the command must be stopped [default: min(5s, ttl/3), clamped to fit]; 2 x refresh + 100ms + kill-after + 100ms + drift must not exceed ttl')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Let up to N hold the lock at once, each with its own lease and fencing token; every instance using KEY must give the same N (a mismatch exits 2). N > 1 needs a single --redis URL')
            [CompletionResult]::new('--wait-replicas', '--wait-replicas', [CompletionResultType]::ParameterName, 'After acquiring and after each renewal, wait until N replicas acknowledged the write (WAIT, at most ttl/10 clamped to 150ms..1s, taken from the renewal budget); an acquisition not acknowledged in time is undone, a renewal not acknowledged is a failed renewal. A failover to a replica that acknowledged keeps the lock')
            [CompletionResult]::new('-E', '-E ', [CompletionResultType]::ParameterName, 'Exit code when the lock was not acquired within --timeout')
            [CompletionResult]::new('--conflict-exit-code', '--conflict-exit-code', [CompletionResultType]::ParameterName, 'Exit code when the lock was not acquired within --timeout')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv')
            [CompletionResult]::new('--shell', '--shell', [CompletionResultType]::ParameterName, 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'A label stored with the lock and shown by `status` (what this run is, for the operator; not a secret)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format: one line per event; json for log shippers')
            [CompletionResult]::new('--record-args', '--record-args', [CompletionResultType]::ParameterName, 'Store the whole command line with the lock (shown by `status` on any host that can read this Redis). By default only the program''s name is stored: arguments often carry tokens')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Run the command on a schedule; each tick runs at most once across every instance that shares the key')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show whether KEY is held, by whom, for how long, and the last fencing token')
            [CompletionResult]::new('release', 'release', [CompletionResultType]::ParameterValue, 'Delete the lock whoever holds it (break glass after a crash). Needs --force')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the Redis servers a key would use: one line per check')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the locks held through this tool whose key matches PATTERN')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'redlock-run;schedule' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS')
            [CompletionResult]::new('--every', '--every', [CompletionResultType]::ParameterName, 'Interval between ticks; ticks fall on wall-clock multiples of it since the Unix epoch, so every host agrees which tick is which')
            [CompletionResult]::new('--cron', '--cron', [CompletionResultType]::ParameterName, 'Cron expression instead of --every: 6 fields (with seconds, e.g. ''*/10 * * * * *'') or 5 (minute first); no year field')
            [CompletionResult]::new('--tz', '--tz', [CompletionResultType]::ParameterName, 'Time zone for --cron, an IANA name such as Europe/Paris [default: UTC]')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Lease length: if the holder vanishes, the lock frees itself this long after the last refresh')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'How often the lease is renewed while the command runs [default: ttl/3]; must be < ttl')
            [CompletionResult]::new('--min-hold', '--min-hold', [CompletionResultType]::ParameterName, 'Keep the lock at least this long after acquiring it, even if the command ends sooner (redlock-run itself exits at once). Stops a late-firing cron on another host from running the same job again')
            [CompletionResult]::new('--kill-after', '--kill-after', [CompletionResultType]::ParameterName, 'Grace between SIGTERM and SIGKILL when the command must be stopped [default: min(5s, ttl/3), clamped to fit]; 2 x refresh + 100ms + kill-after + 100ms + drift must not exceed ttl')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Let up to N hold the lock at once, each with its own lease and fencing token; every instance using KEY must give the same N (a mismatch exits 2). N > 1 needs a single --redis URL')
            [CompletionResult]::new('--wait-replicas', '--wait-replicas', [CompletionResultType]::ParameterName, 'After acquiring and after each renewal, wait until N replicas acknowledged the write (WAIT, at most ttl/10 clamped to 150ms..1s, taken from the renewal budget); an acquisition not acknowledged in time is undone, a renewal not acknowledged is a failed renewal. A failover to a replica that acknowledged keeps the lock')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv')
            [CompletionResult]::new('--shell', '--shell', [CompletionResultType]::ParameterName, 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'A label stored with the lock and shown by `status` (what this run is, for the operator; not a secret)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format: one line per event; json for log shippers')
            [CompletionResult]::new('--record-args', '--record-args', [CompletionResultType]::ParameterName, 'Store the whole command line with the lock (shown by `status` on any host that can read this Redis). By default only the program''s name is stored: arguments often carry tokens')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;status' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format: one line per event; json for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object instead of text')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;release' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format: one line per event; json for log shippers')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Really delete the lock, whoever holds it')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;doctor' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name; the lock lives at exactly this Redis key')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for ''@'', %2F for ''/''); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command''s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format: one line per event; json for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object instead of text')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;list' {
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL, as for the other commands (see `redlock-run --help`); repeat for a Redlock quorum over independent masters')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL, as for the other commands (see `redlock-run --help`); repeat for a Redlock quorum over independent masters')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from this file instead, as for the other commands (see `redlock-run --help`)')
            [CompletionResult]::new('--max', '--max', [CompletionResultType]::ParameterName, 'Show at most this many locks')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format: one line per event; json for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON array of objects shaped like `status --json`')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'redlock-run;help' {
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Run the command on a schedule; each tick runs at most once across every instance that shares the key')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show whether KEY is held, by whom, for how long, and the last fencing token')
            [CompletionResult]::new('release', 'release', [CompletionResultType]::ParameterValue, 'Delete the lock whoever holds it (break glass after a crash). Needs --force')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the Redis servers a key would use: one line per check')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the locks held through this tool whose key matches PATTERN')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'redlock-run;help;schedule' {
            break
        }
        'redlock-run;help;status' {
            break
        }
        'redlock-run;help;release' {
            break
        }
        'redlock-run;help;doctor' {
            break
        }
        'redlock-run;help;list' {
            break
        }
        'redlock-run;help;completions' {
            break
        }
        'redlock-run;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
