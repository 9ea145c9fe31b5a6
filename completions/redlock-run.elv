
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
            cand -k 'The lock''s name (the Redis key)'
            cand --key 'The lock''s name (the Redis key)'
            cand -r 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis-file 'Read the Redis URLs from a private file: no password in argv or env'
            cand -t 'How long to wait for the lock: 0s = one attempt; `inf` = forever'
            cand --timeout 'How long to wait for the lock: 0s = one attempt; `inf` = forever'
            cand --connect-timeout 'How long one request to take the lock may wait for a server'
            cand --ttl 'Lease length: how long the lock outlives a vanished holder'
            cand --refresh 'How often the lease is renewed [default: ttl/3]'
            cand --min-hold 'Keep the lock at least this long after acquiring it'
            cand --kill-after 'Grace between SIGTERM and SIGKILL when the command must be stopped'
            cand --limit 'Let up to N hold the lock at once'
            cand --wait-replicas 'Wait until N replicas acknowledged each acquisition and renewal'
            cand -E 'Exit code when the lock stayed busy for all of --timeout'
            cand --conflict-exit-code 'Exit code when the lock stayed busy for all of --timeout'
            cand -c 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv'
            cand --shell 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv'
            cand --label 'A label stored with the lock and shown by `status` (not a secret)'
            cand --log-format 'Log line format'
            cand --record-args 'Store the whole command line with the lock, not only its program'
            cand -v 'More output on stderr (repeatable)'
            cand --verbose 'More output on stderr (repeatable)'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand schedule 'Run the command on a schedule, each tick at most once across hosts'
            cand status 'Show whether KEY is held, by whom, for how long, and the last fencing token'
            cand release 'Delete the lock whoever holds it (break glass after a crash). Needs --force'
            cand doctor 'Check the Redis servers a key would use: one line per check'
            cand list 'List the locks held through this tool whose key matches PATTERN'
            cand completions 'Print a shell completion script to stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'redlock-run;schedule'= {
            cand -k 'The lock''s name (the Redis key)'
            cand --key 'The lock''s name (the Redis key)'
            cand -r 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis-file 'Read the Redis URLs from a private file: no password in argv or env'
            cand --every 'Interval between ticks'
            cand --cron 'Cron expression instead of --every'
            cand --tz 'Time zone for --cron, an IANA name such as Europe/Paris [default: UTC]'
            cand --ttl 'Lease length: how long the lock outlives a vanished holder'
            cand --refresh 'How often the lease is renewed [default: ttl/3]'
            cand --min-hold 'Keep the lock at least this long after acquiring it'
            cand --kill-after 'Grace between SIGTERM and SIGKILL when the command must be stopped'
            cand --limit 'Let up to N hold the lock at once'
            cand --connect-timeout 'How long one request to take the lock may wait for a server'
            cand --wait-replicas 'Wait until N replicas acknowledged each acquisition and renewal'
            cand -c 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv'
            cand --shell 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv'
            cand --label 'A label stored with the lock and shown by `status` (not a secret)'
            cand --log-format 'Log line format'
            cand --record-args 'Store the whole command line with the lock, not only its program'
            cand -v 'More output on stderr (repeatable)'
            cand --verbose 'More output on stderr (repeatable)'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;status'= {
            cand -k 'The lock''s name (the Redis key)'
            cand --key 'The lock''s name (the Redis key)'
            cand -r 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis-file 'Read the Redis URLs from a private file: no password in argv or env'
            cand --log-format 'Log line format'
            cand --json 'Print one JSON object instead of text'
            cand -v 'More output on stderr (repeatable)'
            cand --verbose 'More output on stderr (repeatable)'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;release'= {
            cand -k 'The lock''s name (the Redis key)'
            cand --key 'The lock''s name (the Redis key)'
            cand -r 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis-file 'Read the Redis URLs from a private file: no password in argv or env'
            cand --log-format 'Log line format'
            cand --force 'Really delete the lock, whoever holds it'
            cand --forget 'Retire KEY: remove everything kept for it (fencing counter, run history, tick claim, stored --limit, ...), never while it is held or waited for (exit 75). Fencing tokens issued later still rise'
            cand -v 'More output on stderr (repeatable)'
            cand --verbose 'More output on stderr (repeatable)'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;doctor'= {
            cand -k 'The lock''s name (the Redis key)'
            cand --key 'The lock''s name (the Redis key)'
            cand -r 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis-file 'Read the Redis URLs from a private file: no password in argv or env'
            cand --log-format 'Log line format'
            cand --json 'Print one JSON object instead of text'
            cand -v 'More output on stderr (repeatable)'
            cand --verbose 'More output on stderr (repeatable)'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;list'= {
            cand -r 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis 'Redis URL; repeat for a Redlock quorum, which is not failover'
            cand --redis-file 'Read the Redis URLs from this file instead, as for the other commands (see `redlock-run --help`)'
            cand --max 'Show at most this many locks'
            cand --log-format 'Log line format'
            cand --json 'Print one JSON array of objects shaped like `status --json`'
            cand -v 'More output on stderr (repeatable)'
            cand --verbose 'More output on stderr (repeatable)'
            cand -q 'Less output on stderr (repeatable)'
            cand --quiet 'Less output on stderr (repeatable)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;completions'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'redlock-run;help'= {
            cand schedule 'Run the command on a schedule, each tick at most once across hosts'
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
