//! User namespaces: the spec's uid/gid mappings, checked before anything is created and
//! written by the runtime for the init, which cannot map itself.

use std::fs;

use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

use crate::error::{IoContext, Result, SpecError};

/// The kernel's limit on lines in a uid_map or gid_map.
const MAX_MAP_LINES: usize = 340;

/// Check the mappings against the namespaces the spec asks for.
pub fn validate(linux: &Linux) -> std::result::Result<(), SpecError> {
    let user_ns = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|ns| ns.typ() == LinuxNamespaceType::User);
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    match user_ns {
        None if !uid.is_empty() || !gid.is_empty() => Err(SpecError::MappingsWithoutUserns),
        None => Ok(()),
        Some(ns) if ns.path().is_some() => Err(SpecError::JoinUserns),
        Some(_) => {
            check_map("uidMappings", uid)?;
            check_map("gidMappings", gid)
        }
    }
}

/// A mapping must be non-empty, map the container's root, and have no overlapping ranges.
fn check_map(name: &'static str, map: &[LinuxIdMapping]) -> std::result::Result<(), SpecError> {
    if map.is_empty() {
        return Err(SpecError::NoMapping(name));
    }
    if map.len() > MAX_MAP_LINES {
        return Err(SpecError::MappingTooLong {
            map: name,
            max: MAX_MAP_LINES,
        });
    }
    for m in map {
        if m.size() == 0 {
            return Err(SpecError::MappingEmptyEntry(name));
        }
        for (start, what) in [(m.container_id(), "containerID"), (m.host_id(), "hostID")] {
            if start.checked_add(m.size()).is_none() {
                return Err(SpecError::MappingOverflow {
                    map: name,
                    what,
                    start,
                    size: m.size(),
                });
            }
        }
    }
    let overlaps = |a: u32, asz: u32, b: u32, bsz: u32| a < b + bsz && b < a + asz;
    for (i, a) in map.iter().enumerate() {
        for b in &map[i + 1..] {
            if overlaps(a.container_id(), a.size(), b.container_id(), b.size())
                || overlaps(a.host_id(), a.size(), b.host_id(), b.size())
            {
                return Err(SpecError::MappingOverlap(name));
            }
        }
    }
    if !map.iter().any(|m| m.container_id() == 0) {
        return Err(SpecError::MappingNoRoot(name));
    }
    Ok(())
}

/// The text of a uid_map/gid_map file.
fn map_text(map: &[LinuxIdMapping]) -> String {
    map.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write the init's uid and gid maps (from the parent: a process cannot map itself to
/// ids it does not hold).
pub fn write_mappings(pid: i32, linux: &Linux) -> Result<()> {
    for (file, map) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let path = format!("/proc/{pid}/{file}");
        fs::write(&path, map_text(map.as_deref().unwrap_or_default())).io("write", path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    #[test]
    fn maps_are_checked() {
        assert!(check_map("uidMappings", &[m(0, 100000, 65536)]).is_ok());
        assert!(check_map("uidMappings", &[]).is_err());
        assert!(check_map("uidMappings", &[m(0, 1, 0)]).is_err());
        assert!(check_map("uidMappings", &[m(1, 100000, 10)]).is_err());
        assert!(check_map("uidMappings", &[m(0, 100, 10), m(5, 500, 10)]).is_err());
        assert!(check_map("uidMappings", &[m(0, 100, 10), m(10, 105, 10)]).is_err());
        assert!(check_map("uidMappings", &[m(0, u32::MAX, 2)]).is_err());
        assert_eq!(
            map_text(&[m(0, 1000, 1), m(1, 100000, 65535)]),
            "0 1000 1\n1 100000 65535\n"
        );
    }
}
