//! Test images built from the host's busybox-static, in memory, and pushed to a
//! [`Registry`]: OCI or Docker schema2 manifests, uncompressed, gzip or zstd layers,
//! extra layers (whiteouts, opaque directories), indexes with more platforms.
//!
//! ```no_run
//! use berth_testkit::image::{Compression, ImageBuilder, Layer};
//! use berth_testkit::registry::{Mode, Registry};
//! let reg = Registry::start(Mode::Open);
//! let pushed = ImageBuilder::busybox()
//!     .compression(Compression::Gzip)
//!     .layer(Layer::new().file("etc/motd", b"hi\n"))
//!     .push(&reg, "test/busybox:1");
//! ```

use std::io::Write;

use crate::registry::{sha256, Registry};

/// The busybox applets the busybox layer links (each `bin/NAME -> busybox`).
pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "id", "env", "sleep", "true", "false", "mkdir", "rm", "touch",
    "printf", "test", "grep", "head", "wc", "stat", "hostname", "pwd", "readlink", "uname",
    "whoami", "ps", "kill", "seq", "dd", "sync", "mount", "cut", "tr",
];

/// How layers are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd (always with OCI's media type: Docker has none).
    Zstd,
}

/// Which manifest and index media types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OCI image manifest and index.
    Oci,
    /// Docker schema2 manifest and manifest list.
    Docker,
}

/// One tar entry of a layer.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A regular file.
    File {
        /// Path inside the image, relative (`etc/motd`).
        path: String,
        /// Permission bits.
        mode: u32,
        /// Contents.
        data: Vec<u8>,
    },
    /// A directory.
    Dir {
        /// Path.
        path: String,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Path.
        path: String,
        /// What it points at.
        target: String,
    },
    /// A hard link to an earlier entry of the same layer.
    Hardlink {
        /// Path.
        path: String,
        /// The earlier entry's path.
        target: String,
    },
}

/// A layer's entries, in tar order.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// The entries.
    pub entries: Vec<Entry>,
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Layer {
        Layer::default()
    }

    /// Adds a file with mode 0644.
    pub fn file(self, path: impl Into<String>, data: &[u8]) -> Layer {
        self.file_mode(path, 0o644, data)
    }

    /// Adds a file with `mode`.
    pub fn file_mode(mut self, path: impl Into<String>, mode: u32, data: &[u8]) -> Layer {
        let path = path.into();
        self.entries.push(Entry::File {
            path,
            mode,
            data: data.to_vec(),
        });
        self
    }

    /// Adds a directory (0755).
    pub fn dir(self, path: impl Into<String>) -> Layer {
        self.dir_mode(path, 0o755)
    }

    /// Adds a directory with `mode`.
    pub fn dir_mode(mut self, path: impl Into<String>, mode: u32) -> Layer {
        self.entries.push(Entry::Dir {
            path: path.into(),
            mode,
        });
        self
    }

    /// Adds a symlink.
    pub fn symlink(mut self, path: impl Into<String>, target: impl Into<String>) -> Layer {
        self.entries.push(Entry::Symlink {
            path: path.into(),
            target: target.into(),
        });
        self
    }

    /// Adds a hard link to an earlier entry.
    pub fn hardlink(mut self, path: impl Into<String>, target: impl Into<String>) -> Layer {
        self.entries.push(Entry::Hardlink {
            path: path.into(),
            target: target.into(),
        });
        self
    }

    /// Deletes `path` of a lower layer (`dir/.wh.name`).
    pub fn whiteout(self, path: &str) -> Layer {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file_mode(wh, 0o644, b"")
    }

    /// Hides what lower layers have in `dir` (`dir/.wh..wh..opq`).
    pub fn opaque(self, dir: &str) -> Layer {
        self.file_mode(format!("{dir}/.wh..wh..opq"), 0o644, b"")
    }

    /// The busybox layer: `bin/busybox` (the host's static one), applet links, a
    /// minimal `/etc/passwd` and `/etc/group`, `/tmp`.
    pub fn busybox() -> Layer {
        let bin = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
        let mut l = Layer::new()
            .dir("bin")
            .file_mode("bin/busybox", 0o755, &bin);
        for a in APPLETS {
            l = l.symlink(format!("bin/{a}"), "busybox");
        }
        l.dir("etc")
            .file(
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            )
            .file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
            .dir("root")
            .dir_mode("tmp", 0o1777)
    }

    /// The uncompressed tar (owner root, mtime fixed, so equal layers hash equal).
    pub fn tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            let (path, data): (&str, &[u8]) = match e {
                Entry::File { path, mode, data } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(data.len() as u64);
                    (path, data)
                }
                Entry::Dir { path, mode } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    (path, &[])
                }
                Entry::Symlink { path, target } | Entry::Hardlink { path, target } => {
                    let kind = if matches!(e, Entry::Symlink { .. }) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    };
                    h.set_entry_type(kind);
                    h.set_mode(0o777);
                    h.set_size(0);
                    h.set_link_name(target).expect("link name");
                    (path, &[])
                }
            };
            b.append_data(&mut h, path, data).expect("append to tar");
        }
        b.into_inner().expect("finish tar")
    }
}

/// A built blob: media type, digest, bytes.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Its media type.
    pub media_type: String,
    /// `sha256:…`.
    pub digest: String,
    /// The content.
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256(&bytes),
            bytes,
        }
    }

    fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()})
    }
}

/// One platform's image, built.
#[derive(Debug, Clone)]
pub struct BuiltManifest {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The config blob.
    pub config: Blob,
    /// The layer blobs, bottom first.
    pub layers: Vec<Blob>,
    /// The uncompressed layers' digests, bottom first.
    pub diff_ids: Vec<String>,
    /// The manifest.
    pub manifest: Blob,
}

/// A whole image, built: the main platform's manifest first, then the others, and the
/// index if there is one.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Per platform.
    pub manifests: Vec<BuiltManifest>,
    /// The index (or manifest list).
    pub index: Option<Blob>,
}

impl BuiltImage {
    /// The main platform's image.
    pub fn main(&self) -> &BuiltManifest {
        &self.manifests[0]
    }

    /// What a tag points at: the index's digest if there is one, else the manifest's.
    pub fn target(&self) -> &str {
        self.index
            .as_ref()
            .map_or(&self.main().manifest.digest, |i| &i.digest)
    }
}

/// Builds a test image.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    layers: Vec<Layer>,
    compression: Compression,
    format: Format,
    platform: String,
    others: Vec<String>,
    force_index: bool,
    run: serde_json::Map<String, serde_json::Value>,
}

impl ImageBuilder {
    /// An image with no layers yet, for the host's platform, OCI, gzip.
    pub fn empty() -> ImageBuilder {
        ImageBuilder {
            layers: Vec::new(),
            compression: Compression::Gzip,
            format: Format::Oci,
            platform: host_platform(),
            others: Vec::new(),
            force_index: false,
            run: serde_json::Map::new(),
        }
    }

    /// The busybox layer, `Cmd ["sh"]`, `PATH=/bin`.
    pub fn busybox() -> ImageBuilder {
        ImageBuilder::empty()
            .layer(Layer::busybox())
            .cmd(&["sh"])
            .env(&["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    }

    /// Layer compression.
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// Manifest format.
    pub fn format(mut self, f: Format) -> Self {
        self.format = f;
        self
    }

    /// Adds a layer on top.
    pub fn layer(mut self, l: Layer) -> Self {
        self.layers.push(l);
        self
    }

    /// The main image's platform (`os/arch[/variant]`; the host's by default).
    pub fn platform(mut self, p: &str) -> Self {
        self.platform = p.to_string();
        self
    }

    /// Adds a platform (a tiny dummy image) and so makes an index.
    pub fn also_platform(mut self, p: &str) -> Self {
        self.others.push(p.to_string());
        self
    }

    /// Makes an index even with one platform.
    pub fn index(mut self) -> Self {
        self.force_index = true;
        self
    }

    /// `Cmd`.
    pub fn cmd(self, args: &[&str]) -> Self {
        self.config("Cmd", serde_json::json!(args))
    }

    /// `Entrypoint`.
    pub fn entrypoint(self, args: &[&str]) -> Self {
        self.config("Entrypoint", serde_json::json!(args))
    }

    /// `Env`.
    pub fn env(self, env: &[&str]) -> Self {
        self.config("Env", serde_json::json!(env))
    }

    /// Any key of the config's `config` (`WorkingDir`, `User`, `Labels`, `StopSignal` …).
    pub fn config(mut self, key: &str, value: serde_json::Value) -> Self {
        self.run.insert(key.to_string(), value);
        self
    }

    /// Builds everything in memory.
    pub fn build(&self) -> BuiltImage {
        let mut manifests = vec![self.build_one(&self.platform, &self.layers)];
        for p in &self.others {
            let arch = p.split('/').nth(1).unwrap_or("unknown");
            let dummy = Layer::new().file("arch", format!("{arch}\n").as_bytes());
            manifests.push(self.build_one(p, &[dummy]));
        }
        let index =
            (self.force_index || !self.others.is_empty()).then(|| self.build_index(&manifests));
        BuiltImage { manifests, index }
    }

    /// Builds and pushes to `reg` as `repo:tag` (blobs, manifests, then the index).
    pub fn push(&self, reg: &Registry, repo_tag: &str) -> BuiltImage {
        let (repo, tag) = repo_tag.rsplit_once(':').expect("repo:tag");
        let built = self.build();
        push_built(reg, repo, tag, &built);
        built
    }

    fn build_one(&self, platform: &str, layers: &[Layer]) -> BuiltManifest {
        let (blobs, diff_ids): (Vec<Blob>, Vec<String>) =
            layers.iter().map(|l| self.layer_blob(l)).unzip();
        let mut parts = platform.split('/');
        let (os, arch, variant) = (
            parts.next().unwrap_or("linux"),
            parts.next().unwrap_or("amd64"),
            parts.next(),
        );
        let mut config = serde_json::json!({
            "architecture": arch, "os": os, "created": "2026-01-01T00:00:00Z",
            "config": self.run, "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": layers.iter().map(|_| serde_json::json!({"created_by": "berth testkit"})).collect::<Vec<_>>(),
        });
        if let Some(v) = variant {
            config["variant"] = v.into();
        }
        let config_type = match self.format {
            Format::Oci => "application/vnd.oci.image.config.v1+json",
            Format::Docker => "application/vnd.docker.container.image.v1+json",
        };
        let config = Blob::new(config_type, config.to_string().into_bytes());
        let manifest_type = self.manifest_type();
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": manifest_type, "config": config.descriptor(),
            "layers": blobs.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        BuiltManifest {
            platform: platform.to_string(),
            config,
            layers: blobs,
            diff_ids,
            manifest: Blob::new(manifest_type, manifest.to_string().into_bytes()),
        }
    }

    fn layer_blob(&self, l: &Layer) -> (Blob, String) {
        let tar = l.tar();
        let diff_id = sha256(&tar);
        let (media_type, bytes) = match (self.compression, self.format) {
            (Compression::None, Format::Oci) => ("application/vnd.oci.image.layer.v1.tar", tar),
            (Compression::None, Format::Docker) => {
                ("application/vnd.docker.image.rootfs.diff.tar", tar)
            }
            (Compression::Gzip, Format::Oci) => {
                ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(&tar))
            }
            (Compression::Gzip, Format::Docker) => (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                gzip(&tar),
            ),
            (Compression::Zstd, _) => (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                zstd::encode_all(&tar[..], 3).expect("zstd"),
            ),
        };
        (Blob::new(media_type, bytes), diff_id)
    }

    fn manifest_type(&self) -> &'static str {
        match self.format {
            Format::Oci => "application/vnd.oci.image.manifest.v1+json",
            Format::Docker => "application/vnd.docker.distribution.manifest.v2+json",
        }
    }

    fn build_index(&self, manifests: &[BuiltManifest]) -> Blob {
        let index_type = match self.format {
            Format::Oci => "application/vnd.oci.image.index.v1+json",
            Format::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
        };
        let entries: Vec<serde_json::Value> = manifests
            .iter()
            .map(|m| {
                let mut d = m.manifest.descriptor();
                let mut parts = m.platform.split('/');
                let mut p = serde_json::json!({"os": parts.next(), "architecture": parts.next()});
                if let Some(v) = parts.next() {
                    p["variant"] = v.into();
                }
                d["platform"] = p;
                d
            })
            .collect();
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": index_type, "manifests": entries});
        Blob::new(index_type, index.to_string().into_bytes())
    }
}

/// Pushes a built image's blobs, manifests and index (the index, or else the main
/// manifest, tagged `tag`).
pub fn push_built(reg: &Registry, repo: &str, tag: &str, built: &BuiltImage) {
    for m in &built.manifests {
        for b in m.layers.iter().chain(std::iter::once(&m.config)) {
            reg.push_blob(repo, &b.bytes);
        }
        let reference = if built.index.is_some() {
            m.manifest.digest.as_str()
        } else {
            tag
        };
        reg.push_manifest(repo, reference, &m.manifest.media_type, &m.manifest.bytes);
    }
    if let Some(i) = &built.index {
        reg.push_manifest(repo, tag, &i.media_type, &i.bytes);
    }
}

/// The host's platform in image terms (`linux/amd64`, `linux/arm64` …).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(l: &Layer) -> Vec<String> {
        let tar = l.tar();
        let mut a = tar::Archive::new(&tar[..]);
        let entries = a.entries().unwrap();
        entries
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_are_named_as_overlay_layers_name_them() {
        let l = Layer::new()
            .whiteout("etc/group")
            .whiteout("top")
            .opaque("root");
        assert_eq!(paths(&l), ["etc/.wh.group", ".wh.top", "root/.wh..wh..opq"]);
    }

    #[test]
    fn equal_layers_hash_equal_and_formats_pick_their_media_types() {
        let a = ImageBuilder::empty()
            .layer(Layer::new().file("a", b"1"))
            .build();
        let b = ImageBuilder::empty()
            .layer(Layer::new().file("a", b"1"))
            .build();
        assert_eq!(a.main().diff_ids, b.main().diff_ids);
        let d = ImageBuilder::empty()
            .format(Format::Docker)
            .also_platform("linux/arm64")
            .layer(Layer::new())
            .build();
        assert!(d
            .index
            .as_ref()
            .unwrap()
            .media_type
            .contains("manifest.list"));
        assert!(d.main().manifest.media_type.contains("docker"));
        assert_eq!(d.manifests[1].platform, "linux/arm64");
    }
}
