//! Redis Cluster key slots: CRC16 (XMODEM) of the key's hash tag (the
//! text between the first `{` and the first `}` after it, when not empty)
//! or of the whole key, modulo 16384. A Lua script may only touch keys of
//! one slot, so every name that belongs to a lock must land in the lock
//! key's slot. See <https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags>.

/// Number of slots in a Redis Cluster.
pub(crate) const SLOTS: u16 = 16384;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum
/// Redis Cluster hashes keys with.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    crc16_from(0, data)
}

/// [`crc16`] continued from `crc`, the checksum of what came before.
fn crc16_from(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash tag of `key`, if it has one.
pub(crate) fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let close = key[open + 1..].iter().position(|&b| b == b'}')?;
    let tag = &key[open + 1..open + 1 + close];
    (!tag.is_empty()).then_some(tag)
}

/// The cluster slot of `key`.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key).unwrap_or(key)) % SLOTS
}

/// A hash tag (no braces) for the names that belong to `key`, so that
/// `{tag}...` lands in `key`'s slot. A key without `}` is its own tag (the
/// names earlier versions used: `{KEY}:redlock-run:...`); a key with a
/// tag of its own (`jobs{eu}`) lends it; any other key (a `}` but no
/// non-empty tag: `a}b`, `x{}y}`) hashes whole, and a tag cannot hold a
/// `}`, so one is found that hashes to the same slot: `rr-` and five hex
/// digits, the first that fits (every slot has one, see the tests).
pub(crate) fn tag_for(key: &str) -> String {
    if !key.contains('}') {
        return key.to_string();
    }
    if let Some(tag) = hash_tag(key.as_bytes()) {
        // A tag ends at a `}`, an ASCII byte: it is whole UTF-8.
        return String::from_utf8_lossy(tag).into_owned();
    }
    let n = SEARCHED[usize::from(key_slot(key.as_bytes()))];
    format!("{SEARCH_PREFIX}{n:05x}")
}

const SEARCH_PREFIX: &str = "rr-";

/// For each slot, the first n whose `rr-{n:05x}` hashes to it: one pass
/// over the candidates, on first use (only keys like `a}b` need it).
static SEARCHED: std::sync::LazyLock<Vec<u32>> = std::sync::LazyLock::new(|| {
    let prefix = crc16_from(0, SEARCH_PREFIX.as_bytes());
    let mut first = vec![u32::MAX; usize::from(SLOTS)];
    let mut left = first.len();
    let mut n = 0u32;
    while left > 0 {
        assert!(n < 0x10_0000, "five hex digits cover every slot (tested)");
        let slot = usize::from(crc16_from(prefix, &hex5(n)) % SLOTS);
        if first[slot] == u32::MAX {
            first[slot] = n;
            left -= 1;
        }
        n += 1;
    }
    first
});

/// `n` as five lowercase hex digits.
fn hex5(n: u32) -> [u8; 5] {
    let mut out = [0u8; 5];
    for (i, b) in out.iter_mut().enumerate() {
        *b = b"0123456789abcdef"[((n >> (4 * (4 - i))) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // The check value of CRC16/XMODEM, and slots CLUSTER KEYSLOT gives.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"jobs{eu}"), key_slot(b"eu"));
        assert_eq!(key_slot(b"jobs{eu}"), 6893);
        assert_eq!(key_slot(b"{jobs{eu}}:x"), 11437);
        // An empty tag, or no closing brace: the whole key is hashed.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"foo{bar"), crc16(b"foo{bar") % SLOTS);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn every_slot_has_a_searched_tag() {
        assert_eq!(&hex5(0x0a3f1), b"0a3f1");
        for slot in 0..SLOTS {
            let tag = format!("{SEARCH_PREFIX}{:05x}", SEARCHED[usize::from(slot)]);
            assert_eq!(key_slot(tag.as_bytes()), slot, "{tag}");
        }
        let tag = tag_for("a}b");
        assert!(tag.starts_with("rr-") && !tag.contains(['{', '}']), "{tag}");
        assert_eq!(key_slot(tag.as_bytes()), key_slot(b"a}b"));
        assert_eq!(tag_for("jobs{eu}x}"), "eu");
        assert_eq!(tag_for("jobs{eu"), "jobs{eu");
    }
}
