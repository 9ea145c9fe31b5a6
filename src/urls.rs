//! Redis URLs as text: where a list of them splits.
//!
//! A password may hold any character, commas included, so a list in
//! REDLOCK_REDIS is split only before a comma that starts a new URL.

/// The schemes a new URL in a list starts with.
pub const SCHEMES: [&str; 10] = [
    "redis://",
    "rediss://",
    "unix://",
    "redis+unix://",
    "valkey://",
    "valkeys://",
    "redis+sentinel://",
    "rediss+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
];

/// Split a comma-separated list of URLs, only before a comma followed
/// (after optional blanks) by one of [`SCHEMES`]: a comma anywhere else,
/// as in a password, stays in its URL.
pub fn split_list(list: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let mut start = 0;
    for (comma, _) in list.match_indices(',') {
        let next = list[comma + 1..].trim_start();
        if SCHEMES.iter().any(|s| next.starts_with(s)) {
            urls.push(list[start..comma].to_string());
            start = comma + 1;
        }
    }
    urls.push(list[start..].to_string());
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_splits_only_where_a_new_url_begins() {
        assert_eq!(split_list("redis://h:1"), ["redis://h:1"]);
        assert_eq!(
            split_list("redis://:a,b@h:1,rediss://u:c,,d@h:2, unix:///s?pass=e,f"),
            [
                "redis://:a,b@h:1",
                "rediss://u:c,,d@h:2",
                " unix:///s?pass=e,f"
            ]
        );
        // Every scheme starts a new URL.
        for s in SCHEMES {
            let list = format!("redis://:p,w@h,{s}x");
            assert_eq!(
                split_list(&list),
                ["redis://:p,w@h".to_string(), format!("{s}x")]
            );
        }
        // A comma before something that is not a URL stays put (the URL
        // is then refused as invalid, not silently cut in two).
        assert_eq!(split_list("redis://h:1,"), ["redis://h:1,"]);
        assert_eq!(split_list("redis://h:1,h2:2"), ["redis://h:1,h2:2"]);
        assert_eq!(split_list(""), [""]);
    }
}
