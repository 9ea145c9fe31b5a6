# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_redlock_run_global_optspecs
    string join \n k/key= r/redis= redis-file= t/timeout= ttl= refresh= min-hold= kill-after= limit= wait-replicas= E/conflict-exit-code= c/shell= label= record-args v/verbose q/quiet log-format= h/help V/version
end

function __fish_redlock_run_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_redlock_run_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_redlock_run_using_subcommand
    set -l cmd (__fish_redlock_run_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c redlock-run -n "__fish_redlock_run_needs_command" -s k -l key -d 'The lock\'s name; the lock lives at exactly this Redis key' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s r -l redis -d 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for \'@\', %2F for \'/\'); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l redis-file -d 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command\'s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS' -r -F
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s t -l timeout -d 'How long to wait for the lock: 0s = one attempt (cron: skip if another host holds it); `inf` = wait forever. A wait longer than a second shows its progress on stderr (who holds the lock, for how long we waited, our place in the queue); -q silences it' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l ttl -d 'Lease length: if the holder vanishes, the lock frees itself this long after the last refresh' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l refresh -d 'How often the lease is renewed while the command runs [default: ttl/3]; must be < ttl' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l min-hold -d 'Keep the lock at least this long after acquiring it, even if the command ends sooner (redlock-run itself exits at once). Stops a late-firing cron on another host from running the same job again' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l kill-after -d 'Grace between SIGTERM and SIGKILL when the command must be stopped [default: min(5s, ttl/3), clamped to fit]; 2 x refresh + 100ms + kill-after + 100ms + drift must not exceed ttl' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l limit -d 'Let up to N hold the lock at once, each with its own lease and fencing token; every instance using KEY must give the same N (a mismatch exits 2). N > 1 needs a single --redis URL' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l wait-replicas -d 'After acquiring and after each renewal, wait until N replicas acknowledged the write (WAIT, at most ttl/10 clamped to 150ms..1s, taken from the renewal budget); an acquisition not acknowledged in time is undone, a renewal not acknowledged is a failed renewal. A failover to a replica that acknowledged keeps the lock' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s E -l conflict-exit-code -d 'Exit code when the lock was not acquired within --timeout' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s c -l shell -d 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l label -d 'A label stored with the lock and shown by `status` (what this run is, for the operator; not a secret)' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l log-format -d 'Log line format: one line per event; json for log shippers' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l record-args -d 'Store the whole command line with the lock (shown by `status` on any host that can read this Redis). By default only the program\'s name is stored: arguments often carry tokens'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s v -l verbose -d 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s V -l version -d 'Print version'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "schedule" -d 'Run the command on a schedule; each tick runs at most once across every instance that shares the key'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "status" -d 'Show whether KEY is held, by whom, for how long, and the last fencing token'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "release" -d 'Delete the lock whoever holds it (break glass after a crash). Needs --force'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "doctor" -d 'Check the Redis servers a key would use: one line per check'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "list" -d 'List the locks held through this tool whose key matches PATTERN'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "completions" -d 'Print a shell completion script to stdout'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s k -l key -d 'The lock\'s name; the lock lives at exactly this Redis key' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s r -l redis -d 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for \'@\', %2F for \'/\'); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l redis-file -d 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command\'s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l every -d 'Interval between ticks; ticks fall on wall-clock multiples of it since the Unix epoch, so every host agrees which tick is which' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l cron -d 'Cron expression instead of --every: 6 fields (with seconds, e.g. \'*/10 * * * * *\') or 5 (minute first); no year field' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l tz -d 'Time zone for --cron, an IANA name such as Europe/Paris [default: UTC]' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l ttl -d 'Lease length: if the holder vanishes, the lock frees itself this long after the last refresh' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l refresh -d 'How often the lease is renewed while the command runs [default: ttl/3]; must be < ttl' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l min-hold -d 'Keep the lock at least this long after acquiring it, even if the command ends sooner (redlock-run itself exits at once). Stops a late-firing cron on another host from running the same job again' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l kill-after -d 'Grace between SIGTERM and SIGKILL when the command must be stopped [default: min(5s, ttl/3), clamped to fit]; 2 x refresh + 100ms + kill-after + 100ms + drift must not exceed ttl' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l limit -d 'Let up to N hold the lock at once, each with its own lease and fencing token; every instance using KEY must give the same N (a mismatch exits 2). N > 1 needs a single --redis URL' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l wait-replicas -d 'After acquiring and after each renewal, wait until N replicas acknowledged the write (WAIT, at most ttl/10 clamped to 150ms..1s, taken from the renewal budget); an acquisition not acknowledged in time is undone, a renewal not acknowledged is a failed renewal. A failover to a replica that acknowledged keeps the lock' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s c -l shell -d 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l label -d 'A label stored with the lock and shown by `status` (what this run is, for the operator; not a secret)' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l log-format -d 'Log line format: one line per event; json for log shippers' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l record-args -d 'Store the whole command line with the lock (shown by `status` on any host that can read this Redis). By default only the program\'s name is stored: arguments often carry tokens'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s v -l verbose -d 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s k -l key -d 'The lock\'s name; the lock lives at exactly this Redis key' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s r -l redis -d 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for \'@\', %2F for \'/\'); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -l redis-file -d 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command\'s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -l log-format -d 'Log line format: one line per event; json for log shippers' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -l json -d 'Print one JSON object instead of text'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s v -l verbose -d 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s k -l key -d 'The lock\'s name; the lock lives at exactly this Redis key' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s r -l redis -d 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for \'@\', %2F for \'/\'); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -l redis-file -d 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command\'s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -l log-format -d 'Log line format: one line per event; json for log shippers' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -l force -d 'Really delete the lock, whoever holds it'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s v -l verbose -d 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s k -l key -d 'The lock\'s name; the lock lives at exactly this Redis key' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s r -l redis -d 'Redis URL: redis://, rediss:// (TLS) or unix://, with user, password and db as usual (percent-encode special characters in the password, e.g. %40 for \'@\', %2F for \'/\'); redis+sentinel://[[user]:password@]host:port[,host:port]...[/service[/db]] for the primary Sentinels name (?sentinel_password= for their own); redis+cluster://[[user]:password@]host:port[,host:port]... for a Redis Cluster (rediss+ for TLS). Repeat for a Redlock quorum over independent masters; in REDLOCK_REDIS, separate the URLs with commas (a comma splits the list only where a new URL begins, so one in a password is kept). For a password, prefer --redis-file: argv is visible in `ps`, and the command inherits REDLOCK_REDIS' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -l redis-file -d 'Read the Redis URLs from this file instead, one per line (blank lines and lines starting with # are ignored), so that no password is in argv or in the command\'s environment. It must be private, as an ssh key: owned by you or root, no access for group or others (else exit 2). The command is given its path in REDLOCK_REDIS_FILE (and no REDLOCK_REDIS), so a redlock-run inside it finds the same servers. Not with --redis; overrides REDLOCK_REDIS' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -l log-format -d 'Log line format: one line per event; json for log shippers' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -l json -d 'Print one JSON object instead of text'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s v -l verbose -d 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -s r -l redis -d 'Redis URL, as for the other commands (see `redlock-run --help`); repeat for a Redlock quorum over independent masters' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -l redis-file -d 'Read the Redis URLs from this file instead, as for the other commands (see `redlock-run --help`)' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -l max -d 'Show at most this many locks' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -l log-format -d 'Log line format: one line per event; json for log shippers' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -l json -d 'Print one JSON array of objects shaped like `status --json`'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -s v -l verbose -d 'More output on stderr (repeatable). Without -v/-q, REDLOCK_LOG (a level or a tracing filter) sets it'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand completions" -s h -l help -d 'Print help'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "schedule" -d 'Run the command on a schedule; each tick runs at most once across every instance that shares the key'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "status" -d 'Show whether KEY is held, by whom, for how long, and the last fencing token'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "release" -d 'Delete the lock whoever holds it (break glass after a crash). Needs --force'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "doctor" -d 'Check the Redis servers a key would use: one line per check'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "list" -d 'List the locks held through this tool whose key matches PATTERN'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
