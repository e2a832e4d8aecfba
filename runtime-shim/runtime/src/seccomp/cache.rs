//! Compiled programs kept on disk, as crun does: containers started from the same profile
//! (Docker's default, usually) skip the compilation.
//!
//! One file per profile, named by a hash of the profile's JSON; the file holds that JSON
//! too, and a hit must match it byte for byte, so a hash collision costs a recompilation,
//! never a wrong filter. The cache is an optimisation only: a missing, stale or unwritable
//! file is a warning and a fresh compilation, never a failed start.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;

use super::bpf::Instruction;
use super::{compile, Program, SeccompError};

const MAGIC: &[u8; 8] = b"BERTHBPF";
/// Bump when the generated code changes for the same profile: older entries are then
/// ignored (their key differs).
const GENERATOR: u32 = 1;

/// [`compile`], through a cache of compiled programs in `cache_dir` (created, mode 0700,
/// if missing). Keyed by the profile's canonical JSON, the crate version, the generator
/// version and the host architecture. Warnings about the profile (unknown syscalls) are
/// only logged when it is compiled, not on a cache hit.
pub fn compile_cached(seccomp: &LinuxSeccomp, cache_dir: &Path) -> Result<Program, SeccompError> {
    let Some(key) = key(seccomp) else {
        return compile(seccomp);
    };
    let path = cache_dir.join(format!("{:016x}.bpf", fnv1a(&key)));
    match fs::read(&path) {
        Ok(bytes) => match decode(&bytes, &key) {
            Some(program) => return Ok(program),
            None => {
                tracing::warn!(path = %path.display(), "seccomp cache: entry unusable, recompiling")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "seccomp cache: unreadable"),
    }
    let program = compile(seccomp)?;
    if let Err(e) = store(cache_dir, &path, &encode(&program, &key)) {
        tracing::warn!(path = %path.display(), error = %e, "seccomp cache: cannot store");
    }
    Ok(program)
}

fn key(seccomp: &LinuxSeccomp) -> Option<Vec<u8>> {
    // Serializing the typed object gives one spelling per profile: fields in a fixed
    // order, no whitespace, whatever the config file looked like.
    let json = serde_json::to_vec(seccomp).ok()?;
    let mut key = format!(
        "berth {} generator {GENERATOR} {} {}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        if cfg!(target_endian = "little") {
            "le"
        } else {
            "be"
        },
    )
    .into_bytes();
    key.extend_from_slice(&json);
    Some(key)
}

/// FNV-1a, 64 bits: stable across builds (unlike std's hasher); collisions are caught by
/// comparing the stored key.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// MAGIC, key length (u32 LE), key, flags (c_ulong LE; the key names the host), count (u32 LE), instructions
/// (code u16, jt, jf, k u32; LE).
fn encode(program: &Program, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + key.len() + 8 * program.instructions.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&program.flags.to_le_bytes());
    out.extend_from_slice(&(program.instructions.len() as u32).to_le_bytes());
    for insn in &program.instructions {
        out.extend_from_slice(&insn.code.to_le_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8], key: &[u8]) -> Option<Program> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let key_len = r.u32()? as usize;
    if r.take(key_len)? != key {
        return None;
    }
    let flags = libc::c_ulong::from_le_bytes(
        r.take(std::mem::size_of::<libc::c_ulong>())?
            .try_into()
            .ok()?,
    );
    let count = r.u32()? as usize;
    if count == 0 || count > super::MAX_INSTRUCTIONS || r.0.len() != 8 * count {
        return None;
    }
    let instructions =
        r.0.chunks_exact(8)
            .map(|c| Instruction {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
    Some(Program {
        instructions,
        flags,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

/// Write atomically (`berth_atomic_file`), owner-only, making the directory first: a
/// concurrent reader sees the old entry, the new one, or none.
fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    berth_atomic_file::write_with_mode(path, bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::testing::profile;

    #[test]
    fn miss_then_hit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("seccomp");
        let spec = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
        );
        let first = compile_cached(&spec, &cache).unwrap();
        let entries: Vec<_> = fs::read_dir(&cache).unwrap().collect();
        assert_eq!(entries.len(), 1, "one entry, no temporary left");
        let second = compile_cached(&spec, &cache).unwrap();
        assert_eq!(first, second);
        assert_eq!(first, compile(&spec).unwrap());
    }

    #[test]
    fn damaged_or_colliding_entries_are_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let spec = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        let expected = compile(&spec).unwrap();
        let path = dir
            .path()
            .join(format!("{:016x}.bpf", fnv1a(&key(&spec).unwrap())));

        fs::write(&path, b"garbage").unwrap();
        assert_eq!(compile_cached(&spec, dir.path()).unwrap(), expected);

        // Same file name, another profile's key: a collision must not be trusted.
        let other = profile(r#"{"defaultAction":"SCMP_ACT_KILL"}"#);
        let wrong = compile(&other).unwrap();
        fs::write(&path, encode(&wrong, &key(&other).unwrap())).unwrap();
        assert_eq!(compile_cached(&spec, dir.path()).unwrap(), expected);
        // And the entry was rewritten with the right program.
        assert_eq!(
            decode(&fs::read(&path).unwrap(), &key(&spec).unwrap()),
            Some(expected)
        );
    }

    #[test]
    fn unwritable_cache_still_compiles() {
        let spec = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        let program = compile_cached(&spec, Path::new("/proc/berth-no-such-dir")).unwrap();
        assert_eq!(program, compile(&spec).unwrap());
    }
}
