//! `USER` resolved as docker resolves it: `name`, `uid`, `name:group`, `uid:gid`, looked
//! up in the image's own /etc/passwd and /etc/group, read safely inside the (untrusted)
//! root filesystem.

use std::path::Path;

use super::inroot::read_in_root;
use super::RunspecError;

/// The largest uid or gid docker accepts (ids are signed 32-bit in its lookup).
const MAX_ID: u32 = i32::MAX as u32;

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership when no group was given).
    pub additional_gids: Vec<u32>,
    /// The home directory from /etc/passwd, `/` when there is no entry.
    pub home: String,
}

/// One line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One line of /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolve `spec` (empty means root) against the id files of `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser, RunspecError> {
    let passwd = read_in_root(rootfs, "etc/passwd")?;
    let group = read_in_root(rootfs, "etc/group")?;
    resolve_with(spec, passwd.as_deref(), group.as_deref())
}

/// The rules, on the files' contents (`None`: the file does not exist).
pub(crate) fn resolve_with(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, RunspecError> {
    let (user_part, group_part) = split_spec(spec)?;
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();

    let mut out = ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    };
    let matched = match user_part {
        // No user: root, with root's passwd entry when there is one.
        "" => users.iter().find(|u| u.uid == 0),
        name => match numeric(name, spec)? {
            Some(uid) => {
                out.uid = uid;
                users.iter().find(|u| u.uid == uid)
            }
            None => Some(users.iter().find(|u| u.name == name).ok_or_else(|| {
                RunspecError::UnknownUser {
                    user: name.into(),
                    file: file_state(passwd),
                }
            })?),
        },
    };
    if let Some(entry) = matched {
        out.uid = entry.uid;
        out.gid = entry.gid;
        out.home = entry.home.clone();
    }

    // `user:` is `user`, as in docker.
    match group_part.filter(|g| !g.is_empty()) {
        Some(g) => out.gid = resolve_group(g, spec, &groups, group)?,
        // Supplementary groups only in the implicit form, from the matched name.
        None => {
            if let Some(entry) = matched {
                out.additional_gids = member_of(&groups, &entry.name);
            }
        }
    }
    Ok(out)
}

/// `user[:group]`; more than one colon is refused.
fn split_spec(spec: &str) -> Result<(&str, Option<&str>), RunspecError> {
    let mut parts = spec.splitn(3, ':');
    let user = parts.next().unwrap_or_default();
    let group = parts.next();
    if parts.next().is_some() {
        return Err(RunspecError::BadUser {
            user: spec.into(),
            reason: "expected user, uid, user:group or uid:gid",
        });
    }
    Ok((user, group))
}

/// `Some(id)` when `text` is all digits (in range), `None` when it is a name.
fn numeric(text: &str, spec: &str) -> Result<Option<u32>, RunspecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id)),
        _ => Err(RunspecError::BadUser {
            user: spec.into(),
            reason: "id out of range (0 to 2147483647)",
        }),
    }
}

fn resolve_group(
    g: &str,
    spec: &str,
    groups: &[GroupEntry],
    file: Option<&str>,
) -> Result<u32, RunspecError> {
    if let Some(gid) = numeric(g, spec)? {
        return Ok(gid);
    }
    groups
        .iter()
        .find(|e| e.name == g)
        .map(|e| e.gid)
        .ok_or_else(|| RunspecError::UnknownGroup {
            group: g.into(),
            file: file_state(file),
        })
}

/// The gids of the groups that list `name` as a member, in file order, each once.
fn member_of(groups: &[GroupEntry], name: &str) -> Vec<u32> {
    let mut gids = Vec::new();
    for g in groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m == name))
    {
        if !gids.contains(&g.gid) {
            gids.push(g.gid);
        }
    }
    gids
}

fn file_state(contents: Option<&str>) -> &'static str {
    if contents.is_some() {
        "no matching entry"
    } else {
        "the file does not exist"
    }
}

/// Entries of /etc/passwd; blank, comment and malformed lines are skipped (a bad uid
/// field never becomes 0).
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            if line.trim().is_empty() || line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first().filter(|n| !n.is_empty())?.to_string(),
                uid: f.get(2)?.trim().parse().ok().filter(|&u| u <= MAX_ID)?,
                gid: f.get(3)?.trim().parse().ok().filter(|&g| g <= MAX_ID)?,
                home: f
                    .get(5)
                    .filter(|h| !h.is_empty())
                    .map_or_else(|| "/".to_string(), |h| h.to_string()),
            })
        })
        .collect()
}

/// Entries of /etc/group, as [`parse_passwd`].
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            if line.trim().is_empty() || line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first().filter(|n| !n.is_empty())?.to_string(),
                gid: f.get(2)?.trim().parse().ok().filter(|&g| g <= MAX_ID)?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        \n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        broken:x:notanumber:5:x:/x:/bin/sh\n\
        nohome:x:1001:1001:::/bin/sh\n\
        dup:x:2000:2000::/first:/bin/sh\n\
        dup:x:2001:2001::/second:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        daemon:x:1:\n\
        app:x:1000:\n\
        audio:x:29:app,other\n\
        video:x:44: app \n\
        staff:x:50:root\n\
        again:x:29:app\n\
        nohome:x:1001:\n";

    fn ok(spec: &str) -> ResolvedUser {
        resolve_with(spec, Some(PASSWD), Some(GROUP)).unwrap()
    }

    fn user(uid: u32, gid: u32, groups: &[u32], home: &str) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            additional_gids: groups.to_vec(),
            home: home.into(),
        }
    }

    #[test]
    fn no_user_is_root_with_roots_groups() {
        assert_eq!(ok(""), user(0, 0, &[50], "/root"));
        assert_eq!(resolve_with("", None, None).unwrap(), user(0, 0, &[], "/"));
    }

    #[test]
    fn a_name_takes_uid_gid_home_and_memberships() {
        assert_eq!(ok("app"), user(1000, 1000, &[29, 44], "/home/app"));
        assert_eq!(ok("daemon"), user(1, 1, &[], "/usr/sbin"));
        assert_eq!(ok("nohome"), user(1001, 1001, &[], "/"));
        assert_eq!(ok("dup").home, "/first", "the first entry wins");
    }

    #[test]
    fn a_uid_with_an_entry_takes_its_gid_and_groups() {
        assert_eq!(ok("1000"), user(1000, 1000, &[29, 44], "/home/app"));
        assert_eq!(ok("0"), user(0, 0, &[50], "/root"));
    }

    #[test]
    fn a_uid_without_an_entry_or_files_is_gid_0() {
        assert_eq!(ok("4242"), user(4242, 0, &[], "/"));
        assert_eq!(
            resolve_with("4242:77", None, None).unwrap(),
            user(4242, 77, &[], "/")
        );
    }

    #[test]
    fn an_explicit_group_replaces_the_gid_and_drops_memberships() {
        assert_eq!(ok("app:video"), user(1000, 44, &[], "/home/app"));
        assert_eq!(ok("app:123"), user(1000, 123, &[], "/home/app"));
        assert_eq!(ok("1000:0"), user(1000, 0, &[], "/home/app"));
        assert_eq!(ok(":audio"), user(0, 29, &[], "/root"));
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        let e = resolve_with("nobody", Some(PASSWD), Some(GROUP)).unwrap_err();
        assert!(matches!(&e, RunspecError::UnknownUser { user, .. } if user == "nobody"));
        assert!(e.to_string().contains("\"nobody\""), "{e}");
        let e = resolve_with("app:wheel", Some(PASSWD), Some(GROUP)).unwrap_err();
        assert!(matches!(&e, RunspecError::UnknownGroup { group, .. } if group == "wheel"));
        let e = resolve_with("app", None, None).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        // A malformed line never matches (and never turns into uid 0).
        assert!(resolve_with("broken", Some(PASSWD), Some(GROUP)).is_err());
    }

    #[test]
    fn malformed_specs_are_refused() {
        for bad in ["a:b:c", "99999999999", "2147483648", "1:4294967295"] {
            let e = resolve_with(bad, Some(PASSWD), Some(GROUP)).unwrap_err();
            assert!(matches!(e, RunspecError::BadUser { .. }), "{bad}: {e}");
        }
        assert_eq!(ok("2147483647").uid, 2147483647);
        assert_eq!(ok("app:"), ok("app"), "an empty group is no group");
    }

    #[test]
    fn names_that_look_numeric_only_when_all_digits() {
        let passwd = "+5:x:7:7::/seven:/bin/sh\n";
        let u = resolve_with("+5", Some(passwd), None).unwrap();
        assert_eq!((u.uid, u.gid), (7, 7));
    }
}
