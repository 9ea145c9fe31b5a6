
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
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from a private file: no password in argv or env')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'How long to wait for the lock: 0s = one attempt; `inf` = forever')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for the lock: 0s = one attempt; `inf` = forever')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long one request to take the lock may wait for a server')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Lease length: how long the lock outlives a vanished holder')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'How often the lease is renewed [default: ttl/3]')
            [CompletionResult]::new('--min-hold', '--min-hold', [CompletionResultType]::ParameterName, 'Keep the lock at least this long after acquiring it')
            [CompletionResult]::new('--kill-after', '--kill-after', [CompletionResultType]::ParameterName, 'Grace between SIGTERM and SIGKILL when the command must be stopped')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Let up to N hold the lock at once')
            [CompletionResult]::new('--wait-replicas', '--wait-replicas', [CompletionResultType]::ParameterName, 'Wait until N replicas acknowledged each acquisition and renewal')
            [CompletionResult]::new('-E', '-E ', [CompletionResultType]::ParameterName, 'Exit code when the lock stayed busy for all of --timeout')
            [CompletionResult]::new('--conflict-exit-code', '--conflict-exit-code', [CompletionResultType]::ParameterName, 'Exit code when the lock stayed busy for all of --timeout')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv')
            [CompletionResult]::new('--shell', '--shell', [CompletionResultType]::ParameterName, 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'A label stored with the lock and shown by `status` (not a secret)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format')
            [CompletionResult]::new('--record-args', '--record-args', [CompletionResultType]::ParameterName, 'Store the whole command line with the lock, not only its program')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Run the command on a schedule, each tick at most once across hosts')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show whether KEY is held, by whom, for how long, and the last fencing token')
            [CompletionResult]::new('release', 'release', [CompletionResultType]::ParameterValue, 'Delete the lock whoever holds it (break glass after a crash). Needs --force')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the Redis servers a key would use: one line per check')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the locks held through this tool whose key matches PATTERN')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'redlock-run;schedule' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from a private file: no password in argv or env')
            [CompletionResult]::new('--every', '--every', [CompletionResultType]::ParameterName, 'Interval between ticks')
            [CompletionResult]::new('--cron', '--cron', [CompletionResultType]::ParameterName, 'Cron expression instead of --every')
            [CompletionResult]::new('--tz', '--tz', [CompletionResultType]::ParameterName, 'Time zone for --cron, an IANA name such as Europe/Paris [default: UTC]')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Lease length: how long the lock outlives a vanished holder')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'How often the lease is renewed [default: ttl/3]')
            [CompletionResult]::new('--min-hold', '--min-hold', [CompletionResultType]::ParameterName, 'Keep the lock at least this long after acquiring it')
            [CompletionResult]::new('--kill-after', '--kill-after', [CompletionResultType]::ParameterName, 'Grace between SIGTERM and SIGKILL when the command must be stopped')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Let up to N hold the lock at once')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'How long one request to take the lock may wait for a server')
            [CompletionResult]::new('--wait-replicas', '--wait-replicas', [CompletionResultType]::ParameterName, 'Wait until N replicas acknowledged each acquisition and renewal')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv')
            [CompletionResult]::new('--shell', '--shell', [CompletionResultType]::ParameterName, 'Run CMDLINE with `/bin/sh -c` instead of a `--` argv')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'A label stored with the lock and shown by `status` (not a secret)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format')
            [CompletionResult]::new('--record-args', '--record-args', [CompletionResultType]::ParameterName, 'Store the whole command line with the lock, not only its program')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;status' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from a private file: no password in argv or env')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object instead of text')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;release' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from a private file: no password in argv or env')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Really delete the lock, whoever holds it')
            [CompletionResult]::new('--forget', '--forget', [CompletionResultType]::ParameterName, 'Retire KEY: remove everything kept for it (fencing counter, run history, tick claim, stored --limit, ...), never while it is held or waited for (exit 75). Fencing tokens issued later still rise')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;doctor' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The lock''s name (the Redis key)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from a private file: no password in argv or env')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object instead of text')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;list' {
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis', '--redis', [CompletionResultType]::ParameterName, 'Redis URL; repeat for a Redlock quorum, which is not failover')
            [CompletionResult]::new('--redis-file', '--redis-file', [CompletionResultType]::ParameterName, 'Read the Redis URLs from this file instead, as for the other commands (see `redlock-run --help`)')
            [CompletionResult]::new('--max', '--max', [CompletionResultType]::ParameterName, 'Show at most this many locks')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON array of objects shaped like `status --json`')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (repeatable)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Less output on stderr (repeatable)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'redlock-run;help' {
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Run the command on a schedule, each tick at most once across hosts')
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
