# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_redlock_run_global_optspecs
    string join \n k/key= r/redis= redis-file= t/timeout= connect-timeout= ttl= refresh= min-hold= kill-after= limit= wait-replicas= E/conflict-exit-code= c/shell= label= record-args v/verbose q/quiet log-format= h/help V/version
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

complete -c redlock-run -n "__fish_redlock_run_needs_command" -s k -l key -d 'The lock\'s name (the Redis key)' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s r -l redis -d 'Redis URL; repeat for a Redlock quorum, which is not failover' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l redis-file -d 'Read the Redis URLs from a private file: no password in argv or env' -r -F
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s t -l timeout -d 'How long to wait for the lock: 0s = one attempt; `inf` = forever' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l connect-timeout -d 'How long one request to take the lock may wait for a server' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l ttl -d 'Lease length: how long the lock outlives a vanished holder' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l refresh -d 'How often the lease is renewed [default: ttl/3]' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l min-hold -d 'Keep the lock at least this long after acquiring it' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l kill-after -d 'Grace between SIGTERM and SIGKILL when the command must be stopped' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l limit -d 'Let up to N hold the lock at once' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l wait-replicas -d 'Wait until N replicas acknowledged each acquisition and renewal' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s E -l conflict-exit-code -d 'Exit code when the lock stayed busy for all of --timeout' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s c -l shell -d 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l label -d 'A label stored with the lock and shown by `status` (not a secret)' -r
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l log-format -d 'Log line format' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_needs_command" -l record-args -d 'Store the whole command line with the lock, not only its program'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s v -l verbose -d 'More output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -s V -l version -d 'Print version'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "schedule" -d 'Run the command on a schedule, each tick at most once across hosts'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "status" -d 'Show whether KEY is held, by whom, for how long, and the last fencing token'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "release" -d 'Delete the lock whoever holds it (break glass after a crash). Needs --force'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "doctor" -d 'Check the Redis servers a key would use: one line per check'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "list" -d 'List the locks held through this tool whose key matches PATTERN'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "completions" -d 'Print a shell completion script to stdout'
complete -c redlock-run -n "__fish_redlock_run_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s k -l key -d 'The lock\'s name (the Redis key)' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s r -l redis -d 'Redis URL; repeat for a Redlock quorum, which is not failover' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l redis-file -d 'Read the Redis URLs from a private file: no password in argv or env' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l every -d 'Interval between ticks' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l cron -d 'Cron expression instead of --every' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l tz -d 'Time zone for --cron, an IANA name such as Europe/Paris [default: UTC]' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l ttl -d 'Lease length: how long the lock outlives a vanished holder' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l refresh -d 'How often the lease is renewed [default: ttl/3]' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l min-hold -d 'Keep the lock at least this long after acquiring it' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l kill-after -d 'Grace between SIGTERM and SIGKILL when the command must be stopped' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l limit -d 'Let up to N hold the lock at once' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l connect-timeout -d 'How long one request to take the lock may wait for a server' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l wait-replicas -d 'Wait until N replicas acknowledged each acquisition and renewal' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s c -l shell -d 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l label -d 'A label stored with the lock and shown by `status` (not a secret)' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l log-format -d 'Log line format' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -l record-args -d 'Store the whole command line with the lock, not only its program'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s v -l verbose -d 'More output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand schedule" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s k -l key -d 'The lock\'s name (the Redis key)' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s r -l redis -d 'Redis URL; repeat for a Redlock quorum, which is not failover' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -l redis-file -d 'Read the Redis URLs from a private file: no password in argv or env' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -l log-format -d 'Log line format' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -l json -d 'Print one JSON object instead of text'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s v -l verbose -d 'More output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s k -l key -d 'The lock\'s name (the Redis key)' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s r -l redis -d 'Redis URL; repeat for a Redlock quorum, which is not failover' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -l redis-file -d 'Read the Redis URLs from a private file: no password in argv or env' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -l log-format -d 'Log line format' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -l force -d 'Really delete the lock, whoever holds it'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -l forget -d 'Retire KEY: remove everything kept for it (fencing counter, run history, tick claim, stored --limit, ...), never while it is held or waited for (exit 75). Fencing tokens issued later still rise'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s v -l verbose -d 'More output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand release" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s k -l key -d 'The lock\'s name (the Redis key)' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s r -l redis -d 'Redis URL; repeat for a Redlock quorum, which is not failover' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -l redis-file -d 'Read the Redis URLs from a private file: no password in argv or env' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -l log-format -d 'Log line format' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -l json -d 'Print one JSON object instead of text'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s v -l verbose -d 'More output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -s r -l redis -d 'Redis URL; repeat for a Redlock quorum, which is not failover' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -l redis-file -d 'Read the Redis URLs from this file instead, as for the other commands (see `redlock-run --help`)' -r -F
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -l max -d 'Show at most this many locks' -r
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -l log-format -d 'Log line format' -r -f -a "text\t''
json\t''"
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -l json -d 'Print one JSON array of objects shaped like `status --json`'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -s v -l verbose -d 'More output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -s q -l quiet -d 'Less output on stderr (repeatable)'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "schedule" -d 'Run the command on a schedule, each tick at most once across hosts'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "status" -d 'Show whether KEY is held, by whom, for how long, and the last fencing token'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "release" -d 'Delete the lock whoever holds it (break glass after a crash). Needs --force'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "doctor" -d 'Check the Redis servers a key would use: one line per check'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "list" -d 'List the locks held through this tool whose key matches PATTERN'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c redlock-run -n "__fish_redlock_run_using_subcommand help; and not __fish_seen_subcommand_from schedule status release doctor list completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
