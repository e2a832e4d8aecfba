#!/usr/bin/env bash
# pull.sh — pull + unpack of a ≈200 MB, 5-layer image from a loopback registry, side by
# side on this machine, with gzip and with zstd layers; prints each side's median time
# and Berth's ratios to containerd and to skopeo + umoci.
#
# The image is built here with no download: five layers from host directories
# (runtime-shim/scripts/oci-layout.py: uncompressed, files owned by root), pushed to a
# private Debian docker-registry (127.0.0.1, a free port, storage in the temp dir) with
# `skopeo copy` as tag `gzip` (skopeo's default) and with `--dest-compress-format zstd`
# as tag `zstd`. Each side then pulls it into a FRESH directory per run (on the root disk,
# or on a tmpfs with --tmpfs), its runs interleaved with the other sides':
#   containerd  a private containerd per run (own root, state, socket, config; CRI off),
#               `ctr images pull --plain-http` (fetch + unpack to the overlayfs snapshotter)
#   skopeo+umoci `skopeo copy docker://… oci:DIR:img` + `umoci unpack` (umoci cannot unpack
#               zstd: n/a)
#   berth       a berthd per run (fresh --images-root), `POST /v1/images/pull` over its
#               socket, until the NDJSON progress stream ends with `done`; its RSS before
#               and its peak (VmHWM) are printed: streaming keeps the peak flat
#   floor       `gzip -dc | tar -x` (`zstd -dc | tar -x`) of the same blobs, one core
#   transfer    `curl` of the blobs to /dev/null (the loopback registry's share)
# Times are wall clock; the table gives the median of K runs (min–max). After each run
# (untimed) its tree is checked against the layers (every file's size, mode and owner,
# every symlink's target), so no side can win by skipping work.
#
# Usage: benches/pull.sh [-k K] [--tmpfs] [--bin-dir DIR] [--no-berth] [--layers "SPEC…"]
#   -k K          runs per side and format (default 3)
#   --tmpfs       every side's root on a tmpfs this script mounts (each run's directory is
#                 removed after the run); default: fresh directories on the root disk, all
#                 kept until exit (about 2 GB per K: on this ext4 without a journal, files
#                 created right after a large deletion nearby come 2–10× slower, so no run
#                 writes where another run's files were just deleted)
#   --bin-dir DIR berthd and berth-shim from DIR (default: build them with
#                 `cargo build --release -p berthd -p berth-shim -p berth-cli`)
#   --no-berth    leave Berth out (also automatic, with the reason, when this berthd has
#                 no image pull)
#   --layers SPEC the layers, as oci-layout.py specs SRC[@MIB[,FILES]] separated by spaces
#                 (default: /usr/lib/x86_64-linux-gnu@55 /usr/bin@45 /usr/lib/gcc@40
#                 /usr/lib/python3.N@30 /usr/share@25,3500: ≈210 MB; 4.2k files, 1.7k
#                 symlinks, 1k dirs; ≈87 MB gzip, ≈74 MB zstd)
# Run as root. Installs Debian's docker-registry, skopeo, umoci, containerd, zstd and curl
# if missing. Everything it made (daemons, mounts, the image layout, the registry, every
# side's directories) is removed on exit, also on Ctrl-C. skopeo runs in a private mount
# namespace with a tmpfs on /var/lib/containers: its blob-info cache there would otherwise
# make skopeo 1.9 push the known gzip blobs again instead of zstd ones (and it is the
# host's to keep). Exit status 0 when every run passed.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(cd "$here/.." && pwd)

k=3 use_tmpfs=0 bin_dir="" berth=1 layers=""
value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "$1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        -k) value "$@"; k=$2; shift 2 ;;
        --tmpfs) use_tmpfs=1; shift ;;
        --bin-dir) value "$@"; bin_dir=$2; shift 2 ;;
        --no-berth) berth=0; shift ;;
        --layers) value "$@"; layers=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $k =~ ^[1-9][0-9]*$ ]] || { echo "-k wants a positive integer, got '$k'" >&2; exit 2; }

say() { printf '==> %s\n' "$*"; }
die() { echo "pull.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }

# ---------------------------------------------------------------- tools
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v containerd >/dev/null && command -v ctr >/dev/null || need+=(containerd)
command -v zstd >/dev/null || need+=(zstd)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
    say "installing ${need[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } \
        || die "cannot install ${need[*]}"
fi
for tool in docker-registry skopeo umoci containerd ctr zstd gzip tar curl python3 unshare taskset; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

if [ "$berth" = 1 ]; then
    if [ -z "$bin_dir" ]; then
        say "building berthd, berth-shim, berth (cargo build --release)"
        (cd "$workspace" && cargo build --release -q -p berthd -p berth-shim -p berth-cli) \
            || die "cargo build failed"
        bin_dir=$workspace/target/release
    fi
    berthd=$bin_dir/berthd shim=$bin_dir/berth-shim
    [ -x "$berthd" ] && [ -x "$shim" ] || die "no berthd or berth-shim in $bin_dir"
    if ! "$berthd" --help 2>/dev/null | grep -q -- '--images-root'; then
        berth=0 berth_why="this berthd has no image pull (no --images-root)"
    fi
else
    berth_why="--no-berth"
fi

# ---------------------------------------------------------------- names and cleanup
tmp=$(mktemp -d /tmp/berth-pullbench.XXXXXX)
chmod 0711 "$tmp"
data=$tmp/runs                    # every side's per-run directories
pids=()                           # daemons this script started
made_var_lib_containers=0

our_mounts() { awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r; }

stop_pid() { # pid: TERM, up to 10 s, then KILL; reaps it
    local p=$1
    kill -TERM "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    return 0
}

cleanup() {
    local rc=$? p m
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do stop_pid "$p"; done
    for m in $(our_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    rm -rf --one-file-system "$tmp"
    [ "$made_var_lib_containers" = 1 ] && rmdir /var/lib/containers 2>/dev/null
    local left=""
    [ -e "$tmp" ] && left="$left $tmp"
    [ -n "$(our_mounts)" ] && left="$left mounts"
    if [ -n "$left" ]; then echo "left behind:$left" >&2; rc=1; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# skopeo with a blob-info cache of its own (see the header): a fresh tmpfs on
# /var/lib/containers in a private mount namespace, per call.
[ -d /var/lib/containers ] || { mkdir -m 0700 /var/lib/containers && made_var_lib_containers=1; } \
    || die "cannot make /var/lib/containers (skopeo's cache mount point)"
skopeo_() {
    unshare -m --propagation private sh -c \
        'mount -t tmpfs -o size=64m,mode=0700 berth-pullbench /var/lib/containers && exec skopeo "$@"' \
        skopeo "$@"
}

# Disk: on the root disk every run's directory stays until exit.
need_mb=$(( 1000 + (use_tmpfs ? 0 : k * 2200) ))
avail_mb=$(df --output=avail -m "$tmp" | tail -1 | tr -d ' ')
[ "$avail_mb" -ge "$need_mb" ] || die "needs about $need_mb MB free in /tmp, has $avail_mb MB"

# ---------------------------------------------------------------- the image
if [ -z "$layers" ]; then
    py=$(ls -d /usr/lib/python3.[0-9]* 2>/dev/null | sort -V | tail -1)
    [ -n "$py" ] || die "no /usr/lib/python3.N on this host: pass --layers"
    layers="/usr/lib/x86_64-linux-gnu@55 /usr/bin@45 /usr/lib/gcc@40 $py@30 /usr/share@25,3500"
fi
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
say "image layout from host directories: $layers"
# shellcheck disable=SC2086 # the specs are words
python3 "$workspace/runtime-shim/scripts/oci-layout.py" "$tmp/layout" img "$arch" $layers \
    || die "building the image layout failed"
# What every side must have unpacked, checked after each run (untimed): each file and
# symlink under usr/ with its size, mode, owner and link target, as the layers hold them.
cat >"$tmp/tree.py" <<'PY'
"""tree.py expect LAYOUT > LIST: the layers' files; tree.py check LIST DIR: DIR holds them.
A side's tree may be split in layer directories (snapshots) and hold other files (blobs):
each path is taken from its first `usr` component on."""
import json, os, stat, sys, tarfile

def expect(root):
    blob = lambda d: os.path.join(root, "blobs", "sha256", d.split(":", 1)[1])
    index = json.load(open(os.path.join(root, "index.json")))
    manifest = json.load(open(blob(index["manifests"][0]["digest"])))
    out = {}
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"])) as t:
            members = {m.name: m for m in t}
        for m in members.values():
            if m.islnk():
                target = members[m.linkname]
                out[m.name] = ("f", target.size, target.mode, m.uid, m.gid, "")
            elif m.isreg():
                out[m.name] = ("f", m.size, m.mode, m.uid, m.gid, "")
            elif m.issym():
                out[m.name] = ("l", 0, 0, m.uid, m.gid, m.linkname)
    return out

def scan(top):
    out = {}
    for d, dirs, files in os.walk(top):  # symlinks to directories come in dirs
        parts = os.path.relpath(d, top).split(os.sep)
        if "usr" not in parts:
            continue
        rel = os.path.join(*parts[parts.index("usr"):])
        for name in dirs + files:
            path = os.path.join(d, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[os.path.join(rel, name)] = ("l", 0, 0, st.st_uid, st.st_gid, os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                out[os.path.join(rel, name)] = ("f", st.st_size, stat.S_IMODE(st.st_mode),
                                                st.st_uid, st.st_gid, "")
    return out

if sys.argv[1] == "expect":
    want = expect(sys.argv[2])
    json.dump(want, sys.stdout)
    print(sum(v[0] == "f" for v in want.values()), sum(v[0] == "l" for v in want.values()),
          file=sys.stderr)
else:
    want = {k: tuple(v) for k, v in json.load(open(sys.argv[2])).items()}
    have = scan(sys.argv[3])
    bad = [f"{k}: want {v}, have {have.get(k, 'nothing')}" for k, v in sorted(want.items())
           if have.get(k) != v]
    if bad:
        sys.exit(f"{len(bad)} of {len(want)} paths differ under {sys.argv[3]}, e.g.\n  "
                 + "\n  ".join(bad[:3]))
PY
read -r expect_files expect_symlinks < <(python3 "$tmp/tree.py" expect "$tmp/layout" 2>&1 >"$tmp/expect.json")
[ -n "${expect_symlinks:-}" ] || die "cannot list the layout's files"

# ---------------------------------------------------------------- registry
port=$(free_port)
reg=127.0.0.1:$port
mkdir -p "$tmp/registry"
cat >"$tmp/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: $reg
YML
say "docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}') on $reg"
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$reg/v2/" >/dev/null 2>&1 || { tail -5 "$tmp/registry.log"; die "registry did not start"; }

for fmt in gzip zstd; do
    flags=()
    [ "$fmt" = zstd ] && flags=(--dest-compress-format zstd)
    say "pushing $reg/bench/img:$fmt (skopeo copy ${flags[*]})"
    skopeo_ copy -q --dest-tls-verify=false "${flags[@]}" "oci:$tmp/layout:img" \
        "docker://$reg/bench/img:$fmt" || die "skopeo copy to the registry failed ($fmt)"
done

# The layer blobs, for the floor (and the transfer), checked to be what the tag says.
mkdir -p "$tmp/blobs"
for fmt in gzip zstd; do
    curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$reg/v2/bench/img/manifests/$fmt" >"$tmp/manifest-$fmt.json" || die "no manifest for :$fmt"
    python3 - "$tmp/manifest-$fmt.json" "$fmt" >"$tmp/layers-$fmt" <<'PY' || die "the :$fmt image is not what was pushed"
import json, sys
m = json.load(open(sys.argv[1]))
want = "application/vnd.oci.image.layer.v1.tar+" + sys.argv[2]
for layer in m["layers"]:
    if layer["mediaType"] != want:
        sys.exit(f"layer {layer['digest']} is {layer['mediaType']}, not {want}")
    print(layer["digest"], layer["size"])
PY
    mkdir -p "$tmp/blobs/$fmt"
    while read -r digest _; do
        curl -fsS -o "$tmp/blobs/$fmt/${digest#sha256:}" "http://$reg/v2/bench/img/blobs/$digest" \
            || die "cannot fetch blob $digest"
    done <"$tmp/layers-$fmt"
done
size_of() { awk '{ s += $2 } END { printf "%.1f", s / 1e6 }' "$tmp/layers-$1"; }
raw_mb=$(du -sb --apparent-size "$tmp/layout/blobs" | awk '{ printf "%.1f", $1 / 1e6 }')

# ---------------------------------------------------------------- where the runs write
mkdir -p "$data"
if [ "$use_tmpfs" = 1 ]; then
    mount -t tmpfs -o size=4g,mode=0711 berth-pullbench "$data" || die "cannot mount a tmpfs on $data"
    where="a tmpfs (each run's directory removed after it)"
else
    where="the root disk, $(findmnt -n -o FSTYPE -T "$data") (fresh directories, kept until exit)"
fi
after_run() { # dir: on the tmpfs, free it; on the disk, keep it (see the header)
    [ "$use_tmpfs" = 1 ] && rm -rf --one-file-system "$1"
    return 0
}
check_files() { # side dir: the run must have unpacked the image's files, as they are
    python3 "$tmp/tree.py" check "$tmp/expect.json" "$2" 2>&1 | sed "s/^/    $1: /" >&2
    [ "${PIPESTATUS[0]}" = 0 ]
}
now() { echo "$EPOCHREALTIME"; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
record() { # side fmt run seconds
    echo "$1 $2 $3 $4" >>"$tmp/results"
    printf '    %-13s %-4s run %s: %s s\n' "${1/#umoci/skopeo+umoci}" "$2" "$3" "$4"
}
: >"$tmp/results"

# ---------------------------------------------------------------- containerd
cd_snapshotter=""
start_containerd() { # dir sock: a private containerd; sets cd_pid
    cat >"$1/config.toml" <<TOML
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$2"
[ttrpc]
  address = "$2.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$1/opt"
TOML
    containerd --config "$1/config.toml" >"$1/containerd.log" 2>&1 &
    cd_pid=$!
    pids+=("$cd_pid")
    for _ in $(seq 150); do ctr -a "$2" version >/dev/null 2>&1 && return 0; sleep 0.1; done
    tail -5 "$1/containerd.log" >&2
    return 1
}
run_containerd() { # fmt run
    local d=$data/containerd-$1-$2 sock=$tmp/cd-$1-$2.sock t0 t1 n
    mkdir -p "$d"
    start_containerd "$d" "$sock" || { echo "    containerd did not start" >&2; return 1; }
    if [ -z "$cd_snapshotter" ]; then
        cd_snapshotter=native
        ctr -a "$sock" plugins ls | awk '$1 == "io.containerd.snapshotter.v1" && $2 == "overlayfs" { print $4 }' \
            | grep -qx ok && cd_snapshotter=overlayfs
    fi
    sync
    t0=$(now)
    ctr -a "$sock" -n bench images pull --plain-http --snapshotter "$cd_snapshotter" \
        "$reg/bench/img:$1" >"$d/pull.log" 2>&1
    local rc=$?
    t1=$(now)
    n=$(ctr -a "$sock" -n bench snapshots --snapshotter "$cd_snapshotter" ls 2>/dev/null | tail -n +2 | wc -l)
    stop_pid "$cd_pid"
    for m in $(awk -v t="$d/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do umount "$m"; done
    if [ "$rc" != 0 ] || [ "$n" -lt 5 ]; then
        tail -3 "$d/pull.log" >&2
        echo "    ctr images pull failed (exit $rc, $n snapshots)" >&2
        return 1
    fi
    check_files containerd "$d/root" || return 1
    record containerd "$1" "$2" "$(secs "$t0" "$t1")"
    after_run "$d"
}

# ---------------------------------------------------------------- skopeo + umoci
run_umoci() { # fmt run
    local d=$data/umoci-$1-$2 t0 t1
    mkdir -p "$d"
    sync
    t0=$(now)
    skopeo_ copy -q --src-tls-verify=false "docker://$reg/bench/img:$1" "oci:$d/oci:img" >"$d/log" 2>&1 \
        && umoci unpack --image "$d/oci:img" "$d/bundle" >>"$d/log" 2>&1
    local rc=$?
    t1=$(now)
    [ "$rc" = 0 ] || { tail -3 "$d/log" >&2; echo "    skopeo copy + umoci unpack failed" >&2; return 1; }
    check_files skopeo+umoci "$d/bundle/rootfs" || return 1
    record umoci "$1" "$2" "$(secs "$t0" "$t1")"
    after_run "$d"
}

# ---------------------------------------------------------------- floor and transfer
run_floor() { # fmt run
    local d=$data/floor-$1-$2 t0 t1 b
    mkdir -p "$d"
    sync
    t0=$(now)
    while read -r b _; do
        taskset -c 0 sh -c '"$1" -dc "$2" | tar -x -C "$3"' floor "$1" "$tmp/blobs/$1/${b#sha256:}" "$d" \
            || { echo "    $1 -dc | tar -x failed" >&2; return 1; }
    done <"$tmp/layers-$1"
    t1=$(now)
    check_files floor "$d" || return 1
    record floor "$1" "$2" "$(secs "$t0" "$t1")"
    after_run "$d"
}
run_transfer() { # fmt run
    local t0 t1 b
    t0=$(now)
    while read -r b _; do
        curl -fsS -o /dev/null "http://$reg/v2/bench/img/blobs/$b" || return 1
    done <"$tmp/layers-$1"
    t1=$(now)
    record transfer "$1" "$2" "$(secs "$t0" "$t1")"
}

# ---------------------------------------------------------------- berth
run_berth() { # fmt run
    local d=$data/berth-$1-$2 sock=$tmp/b-$1-$2.sock t0 t1 pid rc before hwm
    mkdir -p "$d/images"
    "$berthd" --socket "$sock" --state-dir "$tmp/berth-state-$1-$2" --images-root "$d/images" \
        --shim "$shim" --log-level warn </dev/null >/dev/null 2>"$d/berthd.log" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 150); do curl -fsS --unix-socket "$sock" http://b/v1/system >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS --unix-socket "$sock" http://b/v1/system >/dev/null 2>&1 \
        || { tail -3 "$d/berthd.log" >&2; echo "    berthd did not start" >&2; stop_pid "$pid"; return 1; }
    # Its memory: RSS before the pull, and the high-water mark after it (a fresh berthd
    # per run, so the mark is the pull's peak unless start-up was higher). Read from
    # /proc, not sampled: a sampler would take CPU from the pull on a small machine.
    before=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")
    sync
    t0=$(now)
    curl -sS -N --unix-socket "$sock" -X POST -H 'Content-Type: application/json' \
        -d "{\"reference\":\"$reg/bench/img:$1\"}" http://b/v1/images/pull >"$d/pull.ndjson" 2>"$d/curl.log"
    rc=$?
    t1=$(now)
    hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
    stop_pid "$pid"
    [ "$rc" = 0 ] || { cat "$d/curl.log" >&2; echo "    curl failed (exit $rc)" >&2; return 1; }
    python3 - "$d/pull.ndjson" <<'PY' || return 1
# The stream must end with a `done` line and hold no `error` line.
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
def kind(line):
    try:
        v = json.loads(line)
    except ValueError:
        return "unparsable"
    if not isinstance(v, dict):
        return "unparsable"
    for key in ("status", "event", "type", "phase"):
        if isinstance(v.get(key), str) and v[key] in ("done", "error"):
            return v[key]
    return "error" if "error" in v else "done" if "done" in v else "progress"
kinds = [kind(l) for l in lines]
if "error" in kinds or not kinds or kinds[-1] != "done":
    bad = next((l for l, k in zip(lines, kinds) if k == "error"), lines[-1] if lines else "(empty)")
    sys.exit(f"    berth pull failed: {bad.strip()[:300]}")
PY
    check_files berth "$d/images" || return 1
    echo "$1 $2 $before $hwm" >>"$tmp/rss-results"
    record berth "$1" "$2" "$(secs "$t0" "$t1")"
    after_run "$d"
}

# ---------------------------------------------------------------- the runs
sides=(containerd umoci floor transfer)
[ "$berth" = 1 ] && sides=(containerd umoci berth floor transfer)
say "pull + unpack, $k runs per side and format, each into a fresh directory on $where"
[ "$berth" = 1 ] || say "berth left out: $berth_why"
failed=0
for i in $(seq "$k"); do
    # Rotate the order each round, so no side always runs right after the same one.
    order=("${sides[@]:$(( (i - 1) % ${#sides[@]} ))}" "${sides[@]:0:$(( (i - 1) % ${#sides[@]} ))}")
    for fmt in gzip zstd; do
        for side in "${order[@]}"; do
            [ "$side" = umoci ] && [ "$fmt" = zstd ] && continue
            "run_$side" "$fmt" "$i" || failed=1
        done
    done
done

# ---------------------------------------------------------------- the table
say "results"
cd_version=$(containerd --version | awk '{print $3}')
skopeo_version=$(skopeo --version | awk '{print $3}')
umoci_version=$(umoci --version | awk '{print $3}')
python3 - "$tmp/results" "${tmp}/rss-results" "$k" "$berth" <<PY
import os, statistics, sys
results, rss_file, k, berth = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
runs, by_round = {}, {}
for line in open(results):
    side, fmt, i, s = line.split()
    runs.setdefault((side, fmt), []).append(float(s))
    by_round[(side, fmt, i)] = float(s)
med = {key: statistics.median(v) for key, v in runs.items()}

def cell(side, fmt):
    v = runs.get((side, fmt))
    if side == "umoci" and fmt == "zstd":
        return "n/a"
    if not v:
        return "failed"
    return f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" if len(v) > 1 else f"{v[0]:.2f}"

def ratio(a, b, fmt):
    """Of the medians, and [the median of each round's own ratio: a round's runs ran
    close together, so it cancels slow drifts in the machine's load]."""
    if (a, fmt) not in med or (b, fmt) not in med:
        return "n/a"
    paired = [by_round[(a, fmt, i)] / by_round[(b, fmt, i)] for (s, f, i) in by_round
              if s == a and f == fmt and (b, fmt, i) in by_round]
    return f"{med[(a, fmt)] / med[(b, fmt)]:.2f}× [{statistics.median(paired):.2f}×]"

print("pull + unpack of $reg/bench/img: $(wc -l <"$tmp/layers-gzip") layers, $raw_mb MB uncompressed, $expect_files files"
      " and $expect_symlinks symlinks;"
      " gzip $(size_of gzip) MB, zstd $(size_of zstd) MB")
print(f"wall clock, median of {k} runs (min–max), each into a fresh directory on $where")
print()
rows = [("containerd", "containerd $cd_version (ctr images pull, $cd_snapshotter)"),
        ("umoci", "skopeo $skopeo_version + umoci $umoci_version"),
        ("berth", "berth (POST /v1/images/pull)" if berth else "berth: ${berth_why:-}"),
        ("floor", "floor: gzip|zstd -dc | tar -x, 1 core"),
        ("transfer", "loopback transfer (curl)")]
w = max(len(label) for _, label in rows)
print(f"{'side':{w}}  {'gzip s':>20}  {'zstd s':>20}")
for side, label in rows:
    if side == "berth" and not berth:
        print(label)
        continue
    print(f"{label:{w}}  {cell(side, 'gzip'):>20}  {cell(side, 'zstd'):>20}")
if berth:
    print()
    print(f"{'ratio berth/containerd':{w}}  {ratio('berth', 'containerd', 'gzip'):>20}  "
          f"{ratio('berth', 'containerd', 'zstd'):>20}")
    print(f"{'ratio berth/skopeo+umoci':{w}}  {ratio('berth', 'umoci', 'gzip'):>20}  {'n/a':>20}")
    print("(ratios of the medians [median of each round's own ratio])")
    if os.path.exists(rss_file):
        by = {}
        for line in open(rss_file):
            fmt, _, before, hwm = line.split()
            by.setdefault(fmt, []).append((int(before), int(hwm)))
        for fmt, xs in sorted(by.items()):
            print(f"berthd memory, {fmt}: RSS {max(x[0] for x in xs) / 1024:.1f} MB before the "
                  f"pull, peak (VmHWM) {max(x[1] for x in xs) / 1024:.1f} MB, worst of "
                  f"{len(xs)} runs")
PY
[ "$failed" = 0 ] || { echo "some runs failed (see above)" >&2; exit 1; }
