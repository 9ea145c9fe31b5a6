//! How things are shown to people: text from Redis or from a command line
//! with its control characters escaped, a lease's remaining time, and the
//! one way a mode prints its result on stdout. A leaf: it uses no other
//! module of the crate, and any may use it.

use std::time::Duration;

/// `s` with control characters (C0, DEL, C1), line and paragraph
/// separators, bidirectional overrides and backslashes escaped the way
/// Rust writes them (`\n`, `\x1b`, `\u{85}`, `\\`); every other
/// character, non-ASCII letters included, as it is.
pub(crate) fn escape_controls(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            '\u{80}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Human form of a remaining lease.
pub(crate) fn format_ttl(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => humantime::format_duration(Duration::from_millis(ms)).to_string(),
        None => "no expiry".to_string(),
    }
}

/// Print to stdout; a failed write (a full disk, a closed pipe) loses the
/// text, never the exit code: no panic.
pub(crate) fn out(text: &str) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_letters_kept() {
        assert_eq!(
            escape_controls("a\nb\r\tc\u{1b}[2J\u{7}\u{7f}\u{85}\u{2028}\u{202e}d\\n"),
            "a\\nb\\r\\tc\\x1b[2J\\x07\\x7f\\u{85}\\u{2028}\\u{202e}d\\\\n"
        );
        assert_eq!(escape_controls("café 東京 ünï"), "café 東京 ünï");
    }
}
