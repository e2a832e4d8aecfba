#!/usr/bin/env python3
"""Write an OCI image layout DIRECTORY with one uncompressed layer per host directory
(files owned by root, mtimes zeroed), for `skopeo copy oci:DIR:TAG ...` to push.
The sibling of oci-image.py (one gzip layer, a tarball for `ctr images import`).

Usage: oci-layout.py OUT_DIR TAG ARCH LAYER [LAYER...]
  LAYER is SRC[@MIB[,FILES]]: the files under the host directory SRC, at their own
  paths (usr/bin/... for /usr/bin, with their directories), walked in sorted order;
  with @MIB a file goes in only while it fits in MIB MiB of file data (larger ones
  are skipped), with ,FILES the walk stops after FILES files and symlinks, so a
  layer's size depends little on how much a host has installed.
Layers are streamed to disk (never held in memory). Prints one line per layer and a
total to stderr; OUT_DIR must not exist yet.
"""
import hashlib
import json
import os
import stat
import sys
import tarfile
import time

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


class HashingFile:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)

    def tell(self):
        return self.size


def rooted(info):
    """Owned by root, mtime zeroed: the same layer bytes on every run."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


class Layer:
    """One layer's tar being written: what went in, and what still fits."""

    def __init__(self, t, budget, max_files):
        self.t, self.budget, self.max_files = t, budget, max_files
        self.files = self.dirs = self.bytes = 0
        self.added = set()

    def full(self):
        return self.max_files is not None and self.files >= self.max_files

    def fits(self, st):
        """A regular file fits while the layer's file data stays within budget."""
        return (self.budget is None or not stat.S_ISREG(st.st_mode)
                or self.bytes + st.st_size <= self.budget)

    def add_dir(self, path):
        """path and its parents, each once, before anything under them."""
        if path in self.added or path == "/":
            return
        self.add_dir(os.path.dirname(path))
        self.added.add(path)
        self.t.addfile(rooted(self.t.gettarinfo(path, arcname=path.lstrip("/"))))
        self.dirs += 1

    def add(self, path):
        """One file, symlink or hard link (with its directories) if it fits; sockets,
        devices and paths that vanish are skipped."""
        try:
            st = os.lstat(path)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                return
            if self.full() or not self.fits(st):
                return
            self.add_dir(os.path.dirname(path))
            info = rooted(self.t.gettarinfo(path, arcname=path.lstrip("/")))
            if info.isreg():
                with open(path, "rb") as f:
                    self.t.addfile(info, f)
                self.bytes += info.size
            else:
                self.t.addfile(info)
            self.files += 1
        except (FileNotFoundError, PermissionError) as e:
            print(f"oci-layout.py: skipping {path}: {e.strerror}", file=sys.stderr)

    def walk(self, src):
        """src's tree in sorted order: the files that fit. Directories go in with the
        first file under them (symlinks to directories are entries like files)."""
        self.add_dir(src)
        for top, dirs, files in os.walk(src):
            dirs.sort()
            for name in dirs + sorted(files):
                path = os.path.join(top, name)
                if not os.path.isdir(path) or os.path.islink(path):
                    self.add(path)
            if self.full():
                return


def parse_spec(spec):
    """SRC[@MIB[,FILES]] -> (abs src, budget bytes or None, max files or None)."""
    src, _, limits = spec.partition("@")
    mib, _, files = limits.partition(",")
    src = os.path.abspath(src)
    if not os.path.isdir(src):
        sys.exit(f"oci-layout.py: not a directory: {src}")
    try:
        budget = int(float(mib) * (1 << 20)) if mib else None
        max_files = int(files) if files else None
    except ValueError:
        sys.exit(f"oci-layout.py: bad layer spec {spec!r}: want SRC[@MIB[,FILES]]")
    return src, budget, max_files


def write_layer(blobs, spec):
    """One uncompressed layer blob from spec; returns its descriptor and the Layer."""
    src, budget, max_files = parse_spec(spec)
    partial = os.path.join(blobs, f".layer-{os.getpid()}")
    with open(partial, "wb") as raw:
        out = HashingFile(raw)
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
            layer = Layer(t, budget, max_files)
            layer.walk(src)
    digest = out.sha.hexdigest()
    os.rename(partial, os.path.join(blobs, digest))
    print(f"  layer {spec}: {layer.files} files, {layer.dirs} dirs, "
          f"{layer.bytes / 1e6:.1f} MB of file data, tar {out.size / 1e6:.1f} MB",
          file=sys.stderr)
    return {"mediaType": LAYER_TYPE, "digest": "sha256:" + digest, "size": out.size}, layer


def put_blob(blobs, data):
    """A small blob (config, manifest) by digest; returns its digest string."""
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__.strip())
    out, tag, arch, specs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(out)
    os.makedirs(blobs)
    layers, files, data = [], 0, 0
    for spec in specs:
        desc, layer = write_layer(blobs, spec)
        layers.append(desc)
        files += layer.files
        data += layer.bytes
    config = json.dumps({
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/usr/bin/true"], "WorkingDir": "/"},
        # Uncompressed layers: each diff_id is the layer's own digest.
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put_blob(blobs, config), "size": len(config)},
        "layers": layers,
    }, sort_keys=True).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": put_blob(blobs, manifest), "size": len(manifest),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }, sort_keys=True).encode()
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(index)
    total = sum(d["size"] for d in layers)
    print(f"  image: {len(layers)} layers, {files} files, {data / 1e6:.1f} MB of file data, "
          f"{total / 1e6:.1f} MB uncompressed", file=sys.stderr)


if __name__ == "__main__":
    main()
