//! The harness's own tests: it fails where it should, and passes where it
//! should.

use super::check_page;
use super::shell::{invocations, words};

/// The harness itself fails where it should: a failing script, a wrong
/// output, an unexpected status, a bare fence, an unknown info string, a
/// no-run without a reason, a bad option in a block that is not run, a
/// transcript in a text block, a crontab that cron would not find the binary
/// for, a host that only DNS could find.
#[test]
fn the_docs_harness_fails_a_failing_example() {
    let page = "\
```sh
false
```

```console
$ echo hello
goodbye
```

```console
$ redlock-run status --key docs-harness-free
```

```
$ echo bare
```

```zsh
echo zsh
```

```sh no-run:
echo x
```

```sh no-run:sudo
sudo redlock-run --key k --ttl soon -- true
```

```text
$ redlock-run list
```

```crontab
0 2 * * *  /usr/local/bin/redlock-run --key k -- /opt/job
```

```sh
redlock-run doctor --key k --redis redis://locks.internal:6379
```
";
    let failures = check_page("harness.md", page);
    let lines: Vec<&str> = failures.iter().map(|f| f.lines().next().unwrap()).collect();
    assert_eq!(
        lines.len(),
        10,
        "every block should fail:\n{}",
        failures.join("\n\n")
    );
    for (failure, needle) in failures.iter().zip([
        "exited Some(1)",
        "but the page shows",
        "exited Some(1), not 0",
        "without an info string",
        "\"zsh\"",
        "needs a reason",
        "soon",
        "a transcript in a text block",
        "/usr/local/bin/redlock-run",
        "locks.internal",
    ]) {
        assert!(failure.contains(needle), "{needle:?} not in:\n{failure}");
    }

    // And passes where it should: wildcards, `# exit N`, continuations,
    // state kept across a transcript's commands, a fence in a list.
    let page = "\
```console
$ x=hello
$ echo \"$x world\"
h[..]o [..]
$ printf 'a\\nb\\nc\\n'
a
...
$ redlock-run status --key docs-harness-free   # exit 1
...
$ echo one |
>   tr o O
One
```

- in a list:

  ```console
  $ echo indented
  indented
  ```

```crontab
PATH=/root/.cargo/bin:/usr/bin:/bin
*/5 * * * *  redlock-run --key k -- /opt/job
@daily       /usr/bin/redlock-run --key k -- /opt/job
```
";
    let failures = check_page("harness.md", page);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn docs_harness_words_and_invocations() {
    assert_eq!(
        words(r#"a 'b c' "d \"e\"" f\ g|h #c"#),
        ["a", "b c", "d \"e\"", "f g", "|", "h", "#"]
    );
    assert_eq!(
        invocations("X=1 redlock-run --key k -- ./x.sh --a=1 | jq .\nBIN=/x/redlock-run y\n"),
        [vec!["redlock-run", "--key", "k", "--", "./x.sh", "--a=1"]]
    );
    assert_eq!(
        invocations("$ { redlock-run status --key k --json 2>/dev/null || true; } | jq\n"),
        [vec!["redlock-run", "status", "--key", "k", "--json"]]
    );
}
