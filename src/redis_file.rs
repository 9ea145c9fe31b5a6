//! `--redis-file` / `REDLOCK_REDIS_FILE`: the Redis URLs read from a private
//! file, so that no password is in argv (which `ps` shows every user, for
//! redlock-run and its guardian alike) or in the environment the command
//! inherits.
//!
//! The file holds one URL per line; blank lines and lines whose first
//! non-blank character is `#` are ignored (a `#` later in a line is part of
//! the URL: passwords may hold one). Like ssh with a private key, the file
//! is refused (exit 2) unless it is private:
//!
//! - it must be a regular file (a FIFO, a device or a directory is refused);
//! - its owner must be the user redlock-run runs as (its effective uid) or
//!   root. Root's files are accepted because root can read and rewrite any
//!   file anyway (and systemd's `LoadCredential=` files are root's); another
//!   user's file is refused even when redlock-run runs as root, since that
//!   user could point the lock, and the password, at a server of theirs;
//! - nobody but its owner may access it: no permission bit for group or
//!   others (`mode & 077`, as ssh checks), with one refinement: when a
//!   POSIX ACL explains the group bits (they are then the ACL's mask), what
//!   counts is whom the ACL grants access. Extra entries for the running
//!   user or root are accepted, for any other user or any group refused.
//!   That is the case of `LoadCredential=` with `User=` on a credentials
//!   file system with ACLs: owner root, mode 0440, `user:<service>:r--`.
//!
//! The file is opened once and checked through that descriptor (no race
//! between the check and the read).

use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::exit::Failure;

/// A list of URLs is a few hundred bytes; anything near this is not one.
const MAX_LEN: u64 = 64 * 1024;

/// The URLs in the file at `path`, each with its line number, once the
/// file was found private (see the module's documentation).
pub(crate) fn read(path: &Path) -> Result<Vec<(usize, String)>, Failure> {
    let shown = path.display();
    let cannot =
        |e: std::io::Error| Failure::Usage(format!("cannot read the Redis URL file {shown}: {e}"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO must not block the open: it is refused below.
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(Failure::Usage(format!(
            "the Redis URL file {shown} is not a regular file: give a file of one URL per line"
        )));
    }
    let me = nix::unistd::geteuid().as_raw();
    check_owner(path, meta.uid(), me)?;
    let acl = if meta.mode() & 0o077 != 0 {
        read_acl(&file)
    } else {
        None
    };
    check_access(path, meta.mode(), acl.as_deref(), me)?;
    if meta.len() > MAX_LEN {
        return Err(Failure::Usage(format!(
            "the Redis URL file {shown} is {} bytes long: it should hold one URL per line",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.by_ref()
        .take(MAX_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::Usage(format!(
            "the Redis URL file {shown} is not UTF-8 text: give one URL per line"
        ))
    })?;
    let urls = parse(&text);
    if urls.is_empty() {
        return Err(Failure::Usage(format!(
            "the Redis URL file {shown} holds no URL: write one per line (# starts a comment)"
        )));
    }
    Ok(urls)
}

/// The URL lines of `text` with their numbers (from 1), trimmed; blank
/// lines and `#` comment lines left out.
fn parse(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| (n, line.to_string()))
        .collect()
}

/// The file's path as the command is given it (REDLOCK_REDIS_FILE): made
/// absolute, so that a redlock-run inside the command finds it from any
/// directory.
pub(crate) fn inherited(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A user's name and uid, for a message.
fn who(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

/// The owner must be `me` or root.
fn check_owner(path: &Path, owner: u32, me: u32) -> Result<(), Failure> {
    if owner == me || owner == 0 {
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "the Redis URL file {} is owned by {}, not by {} or root: it holds passwords, so \
         only a file you (or root) own is used; copy it to a file of yours with mode 600",
        path.display(),
        who(owner),
        who(me)
    )))
}

/// Nobody but the owner, `me` and root may access the file: see the module
/// documentation. `acl` is the file's access ACL, if it has one.
fn check_access(path: &Path, mode: u32, acl: Option<&[u8]>, me: u32) -> Result<(), Failure> {
    let open = mode & 0o077;
    let explained = mode & 0o007 == 0 && acl.is_some_and(|a| acl_private(a, me));
    if open == 0 || explained {
        return Ok(());
    }
    let shown = path.display();
    let acl_note = if acl.is_some() { " and its ACL" } else { "" };
    Err(Failure::Usage(format!(
        "the Redis URL file {shown} is open to group or others (mode {:04o}{acl_note}): it \
         holds passwords; run chmod 600 {shown} (as for an ssh key)",
        mode & 0o7777
    )))
}

/// The file's POSIX access ACL (the `system.posix_acl_access` attribute,
/// in the kernel's format), if it has one that could be read.
fn read_acl(file: &std::fs::File) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let len = rustix::fs::fgetxattr(file, c"system.posix_acl_access", &mut buf[..]).ok()?;
    buf.truncate(len);
    Some(buf)
}

// The kernel's ACL attribute: a little-endian u32 version (2), then
// entries of (u16 tag, u16 permissions, u32 id).
const ACL_VERSION: u32 = 2;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;

/// Whether the ACL `attr` grants access to nobody but the owner, `me` and
/// root (named entries count through the mask). Anything it cannot read
/// counts as not private: the mode bits, which are then the rule, can
/// only be stricter.
fn acl_private(attr: &[u8], me: u32) -> bool {
    let Some((version, entries)) = attr.split_first_chunk::<4>() else {
        return false;
    };
    if u32::from_le_bytes(*version) != ACL_VERSION || entries.len() % 8 != 0 {
        return false;
    }
    let entries: Vec<(u16, u16, u32)> = entries
        .chunks_exact(8)
        .map(|e| {
            (
                u16::from_le_bytes([e[0], e[1]]),
                u16::from_le_bytes([e[2], e[3]]),
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            )
        })
        .collect();
    let mask = entries
        .iter()
        .find(|(tag, _, _)| *tag == ACL_MASK)
        .map_or(0o7, |(_, perm, _)| *perm);
    entries.iter().all(|&(tag, perm, id)| match tag {
        ACL_USER => perm & mask == 0 || id == me || id == 0,
        ACL_GROUP_OBJ | ACL_GROUP => perm & mask == 0,
        ACL_OTHER => perm == 0,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_per_line_comments_and_blanks_ignored() {
        let text = "# the lock servers\n\n  redis://:p#w@h1:1  \r\nredis://h2:2 # not a comment\n\t# indented comment\nunix:///s";
        assert_eq!(
            parse(text),
            [
                (3, "redis://:p#w@h1:1".to_string()),
                (4, "redis://h2:2 # not a comment".to_string()),
                (6, "unix:///s".to_string()),
            ]
        );
        assert!(parse("\n# only a comment\n   \n").is_empty());
    }

    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = ACL_VERSION.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            v.extend(tag.to_le_bytes());
            v.extend(perm.to_le_bytes());
            v.extend(id.to_le_bytes());
        }
        v
    }

    const USER_OBJ: u16 = 0x01;
    const NO_ID: u32 = u32::MAX;

    #[test]
    fn an_acl_for_the_running_user_only_is_private() {
        // systemd's LoadCredential= with User=1001: root's file, mode 0440
        // (the group bits are the mask), read for user 1001 only.
        let systemd = acl(&[
            (USER_OBJ, 4, NO_ID),
            (ACL_USER, 4, 1001),
            (ACL_GROUP_OBJ, 0, NO_ID),
            (ACL_MASK, 4, NO_ID),
            (ACL_OTHER, 0, NO_ID),
        ]);
        let p = Path::new("/run/credentials/x.service/redis");
        assert!(acl_private(&systemd, 1001));
        assert!(check_access(p, 0o100440, Some(&systemd), 1001).is_ok());
        // Another user than the one running may read it.
        assert!(!acl_private(&systemd, 1002));
        let err = check_access(p, 0o100440, Some(&systemd), 1002).unwrap_err();
        assert!(err.to_string().contains("(mode 0440 and its ACL)"), "{err}");
        // The owning group, or a named group, may read it.
        let group = acl(&[
            (USER_OBJ, 6, NO_ID),
            (ACL_USER, 4, 1001),
            (ACL_GROUP_OBJ, 4, NO_ID),
            (ACL_MASK, 4, NO_ID),
            (ACL_OTHER, 0, NO_ID),
        ]);
        assert!(!acl_private(&group, 1001));
        let named = acl(&[
            (USER_OBJ, 6, NO_ID),
            (ACL_GROUP_OBJ, 0, NO_ID),
            (ACL_GROUP, 4, 50),
            (ACL_MASK, 6, NO_ID),
            (ACL_OTHER, 0, NO_ID),
        ]);
        assert!(!acl_private(&named, 1001));
        // ... unless the mask takes it away.
        let masked = acl(&[
            (USER_OBJ, 6, NO_ID),
            (ACL_GROUP_OBJ, 4, NO_ID),
            (ACL_GROUP, 4, 50),
            (ACL_MASK, 0, NO_ID),
            (ACL_OTHER, 0, NO_ID),
        ]);
        assert!(acl_private(&masked, 1001));
        // Others' bits are never explained by an ACL; a malformed ACL
        // explains nothing.
        assert!(check_access(p, 0o100444, Some(&systemd), 1001).is_err());
        assert!(!acl_private(&systemd[..7], 1001));
        assert!(!acl_private(&[1, 0, 0, 0], 1001));
    }

    #[test]
    fn modes_and_owners() {
        let p = Path::new("/etc/redlock/redis");
        for ok in [0o100600, 0o100400, 0o100700, 0o100000] {
            assert!(check_access(p, ok, None, 1000).is_ok(), "{ok:o}");
        }
        for open in [0o100644, 0o100640, 0o100604, 0o100620, 0o100601, 0o100660] {
            let err = check_access(p, open, None, 1000).unwrap_err().to_string();
            let mode = format!("(mode {:04o})", open & 0o7777);
            assert!(
                err.starts_with("the Redis URL file /etc/redlock/redis is open to group or others")
                    && err.contains(&mode),
                "{err}"
            );
        }
        assert!(check_owner(p, 1000, 1000).is_ok());
        assert!(check_owner(p, 0, 1000).is_ok());
        assert!(check_owner(p, 1001, 1000).is_err());
        // Root runs it: another user's file is still refused.
        let err = check_owner(p, 1001, 0).unwrap_err().to_string();
        assert!(
            err.contains("is owned by") && err.contains("uid 1001"),
            "{err}"
        );
    }
}
