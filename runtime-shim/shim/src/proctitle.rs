//! The command line a forked shim shows in `ps` (/proc/PID/cmdline): the one an exec'd
//! shim would have had, not its spawner's `berth-shim --spawner`, so operators and tools
//! that find a container's shim by its `--id` still do.
//!
//! With CAP_SYS_RESOURCE the kernel is pointed at a copy (PR_SET_MM). Without it the
//! spawner's own argument strings are overwritten in place, as setproctitle(3) does:
//! the environment strings that follow them on the stack are moved to the heap first,
//! and the kernel reads a command line that runs past the arguments on into that area
//! (as one string, its arguments separated by spaces), truncated if it does not fit.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// Show `args` as this process's command line. Only for a single-threaded process (it
/// rewrites the environment), and afterwards nothing may read the original arguments
/// (`std::env::args`, glibc's `program_invocation_name`): their memory may be reused.
pub fn set(args: &[OsString]) {
    // Read before anything moves: where the original arguments and environment lie.
    let Some(area) = Areas::of_self() else {
        return;
    };
    let mut nul_separated = Vec::new();
    for arg in args {
        nul_separated.extend_from_slice(arg.as_bytes());
        nul_separated.push(0);
    }
    if point_kernel_at(nul_separated.clone(), area) {
        return;
    }
    let spaced: Vec<u8> = nul_separated
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    overwrite(area, spaced.trim_ascii_end());
}

/// PR_SET_MM_ARG_START/END at a leaked copy; `false` (and the original range kept)
/// where that is not permitted.
fn point_kernel_at(text: Vec<u8>, original: Areas) -> bool {
    // Kept for the life of the process: the kernel reads the command line from here.
    let text: &'static [u8] = Box::leak(text.into_boxed_slice());
    let start = text.as_ptr() as libc::c_ulong;
    let end = start + text.len() as libc::c_ulong;
    let set = |what: libc::c_int, value: libc::c_ulong| {
        // SAFETY: prctl with integer arguments; the range stays valid (leaked above).
        unsafe { libc::prctl(libc::PR_SET_MM, what as libc::c_ulong, value, 0, 0) == 0 }
    };
    // The heap lies below the stack, where the original arguments are: moving the start
    // first keeps start <= end at each step, as the kernel requires.
    if !set(libc::PR_SET_MM_ARG_START, start) {
        return false;
    }
    if !set(libc::PR_SET_MM_ARG_END, end) {
        set(
            libc::PR_SET_MM_ARG_START,
            original.arg_start as libc::c_ulong,
        );
        return false;
    }
    true
}

/// Where this process's argument and environment strings lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Areas {
    arg_start: usize,
    arg_end: usize,
    env_start: usize,
    env_end: usize,
}

impl Areas {
    fn of_self() -> Option<Areas> {
        Areas::parse(&std::fs::read_to_string("/proc/self/stat").ok()?)
    }

    /// Fields 48–51 of /proc/PID/stat.
    fn parse(stat: &str) -> Option<Areas> {
        let stat = berth_procfs::Stat::parse(stat)?;
        let field = |n| usize::try_from(stat.field(n)?).ok();
        let areas = Areas {
            arg_start: field(48)?,
            arg_end: field(49)?,
            env_start: field(50)?,
            env_end: field(51)?,
        };
        (areas.arg_start > 0 && areas.arg_start < areas.arg_end).then_some(areas)
    }

    /// The bytes that may hold the command line: the arguments, and the environment when
    /// it follows them directly.
    fn room(&self) -> usize {
        let end = if self.env_start == self.arg_end && self.env_end > self.env_start {
            self.env_end
        } else {
            self.arg_end
        };
        end - self.arg_start
    }
}

fn overwrite(area: Areas, title: &[u8]) {
    // The environment's strings are about to be overwritten: copy them to the heap
    // (glibc's setenv allocates) and let go of the originals.
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    // SAFETY: clearenv with no other thread running (the caller's contract).
    unsafe { libc::clearenv() };
    for (key, value) in vars {
        // Names setenv refuses (and std::env::set_var panics on) could not be looked up
        // anyway.
        let name = key.as_bytes();
        if !name.is_empty()
            && !name.contains(&b'=')
            && !name.contains(&0)
            && !value.as_bytes().contains(&0)
        {
            std::env::set_var(key, value);
        }
    }
    let room = area.room();
    // SAFETY: [arg_start, arg_start + room) is this process's argument (and environment)
    // strings on its stack, as the kernel placed them at exec (read before any prctl):
    // mapped, writable, and no longer read — the caller reads no arguments from here on,
    // and the environment now lives on the heap.
    let bytes = unsafe { std::slice::from_raw_parts_mut(area.arg_start as *mut u8, room) };
    bytes.fill(0);
    let n = title.len().min(room - 1);
    bytes[..n].copy_from_slice(&title[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_areas_are_found_past_a_command_name_with_spaces() {
        let mut stat = String::from("42 (a b) c) S");
        for i in 4..=47 {
            stat.push_str(&format!(" {i}"));
        }
        stat.push_str(" 1000 1100 1100 1300 0\n");
        let areas = Areas::parse(&stat).unwrap();
        assert_eq!(
            areas,
            Areas {
                arg_start: 1000,
                arg_end: 1100,
                env_start: 1100,
                env_end: 1300
            }
        );
        assert_eq!(areas.room(), 300);
        // An environment elsewhere does not add room.
        let apart = Areas {
            env_start: 2000,
            env_end: 2100,
            ..areas
        };
        assert_eq!(apart.room(), 100);
        assert_eq!(Areas::parse("42 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_its_areas() {
        let areas = Areas::of_self().unwrap();
        assert!(areas.room() >= areas.arg_end - areas.arg_start);
    }
}
