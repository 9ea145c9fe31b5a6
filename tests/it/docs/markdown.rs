//! The Markdown side of the docs harness: fenced blocks, `console`
//! transcripts, and output compared with `[..]` and `...`.

/// One fenced block.
#[derive(Debug, Clone)]
pub(super) struct Block {
    /// `FILE:LINE` of the opening fence.
    pub(super) at: String,
    pub(super) lang: String,
    pub(super) attrs: Vec<String>,
    pub(super) body: String,
}

impl Block {
    pub(super) fn no_run(&self) -> Option<&str> {
        self.attrs.iter().find_map(|a| a.strip_prefix("no-run:"))
    }
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
    }
}

/// The fenced blocks of a Markdown page (backtick or tilde fences, the
/// closing fence at least as long as the opening one).
pub(super) fn blocks(name: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    // (fence character, fence length, indentation, block)
    let mut open: Option<(char, usize, usize, Block)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let fence_len = fence_char.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match &mut open {
            None if fence_len >= 3 => {
                let c = fence_char.unwrap();
                let info = trimmed[fence_len * c.len_utf8()..].trim();
                let mut words = info.split_whitespace();
                open = Some((
                    c,
                    fence_len,
                    line.len() - trimmed.len(),
                    Block {
                        at: format!("{name}:{}", i + 1),
                        lang: words.next().unwrap_or("").to_string(),
                        attrs: words.map(str::to_string).collect(),
                        body: String::new(),
                    },
                ));
            }
            None => {}
            Some((c, len, _, _))
                if fence_char == Some(*c)
                    && fence_len >= *len
                    && trimmed[fence_len * c.len_utf8()..].trim().is_empty() =>
            {
                out.push(open.take().unwrap().3);
            }
            // A fence indented in a list: its lines lose that indentation.
            Some((_, _, indent, block)) => {
                let strip = line.len() - line.trim_start_matches(' ').len();
                block.body.push_str(&line[strip.min(*indent)..]);
                block.body.push('\n');
            }
        }
    }
    if let Some((_, _, _, block)) = open {
        out.push(Block {
            lang: "unclosed".into(),
            ..block
        });
    }
    out
}

// Comparing output.

/// Does `line` match `pattern`, where `[..]` stands for any text?
pub(super) fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Do `lines` match `patterns`, where a pattern line `...` stands for any
/// number of lines?
pub(super) fn lines_match(patterns: &[&str], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((&"...", rest)) => (0..=lines.len()).any(|i| lines_match(rest, &lines[i..])),
        Some((p, rest)) => lines
            .split_first()
            .is_some_and(|(l, ls)| line_matches(p, l) && lines_match(rest, ls)),
    }
}

pub(super) fn output_matches(expected: &str, actual: &str) -> bool {
    let trim = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s.lines().map(|l| l.trim_end().to_string()).collect();
        while v.last().is_some_and(|l| l.is_empty()) {
            v.pop();
        }
        v
    };
    let (e, a) = (trim(expected), trim(actual));
    let e: Vec<&str> = e.iter().map(String::as_str).collect();
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    lines_match(&e, &a)
}

// Transcripts.

/// One `$ ` command of a transcript.
#[derive(Debug)]
pub(super) struct Step {
    pub(super) command: String,
    pub(super) expected: String,
    pub(super) status: i32,
}

pub(super) fn transcript(body: &str) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_command = false;
    for line in body.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: format!("{cmd}\n"),
                expected: String::new(),
                status: 0,
            });
            in_command = true;
        } else if let (true, Some(cont)) = (in_command, line.strip_prefix("> ")) {
            steps.last_mut().unwrap().command += &format!("{cont}\n");
        } else if let Some(step) = steps.last_mut() {
            in_command = false;
            step.expected += &format!("{line}\n");
        } else if !line.trim().is_empty() {
            return Err(format!("a transcript starts with `$ `, not {line:?}"));
        }
    }
    for step in &mut steps {
        let last = step.command.trim_end().lines().last().unwrap_or("");
        if let Some((_, n)) = last.rsplit_once("# exit ") {
            step.status = n
                .trim()
                .parse()
                .map_err(|_| format!("`# exit {n}`: not a number"))?;
        }
    }
    if steps.is_empty() {
        return Err("an empty transcript".into());
    }
    Ok(steps)
}
