#!/usr/bin/env bash
# Many short containers, J at a time, each `berth-runc --root R run --bundle B idN` in its
# default cgroup (no cgroupsPath: the runtime's shared default parent), as a script or an
# engine would use a runc-compatible runtime. Counts failures and hangs, prints the first
# few distinct error lines, and checks that nothing is left behind (state directories,
# cgroups).
#
# Usage: runtime-shim/scripts/parallel-runs.sh [-n RUNS] [-j PARALLEL] [--runtime PATH]
#        [--roots K]
#   -n RUNS         containers in all (default 10000)
#   -j PARALLEL     how many run at once (default 2)
#   --runtime PATH  the runtime (default: target/release/berth-runc; runc works too)
#   --roots K       spread the runs over K runtime roots (default 1)
# Must run as root. The rootfs is a static busybox (busybox-static) or, without one, the
# host's `true` and its shared libraries.
set -euo pipefail

prog=$(basename "$0")
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
runs=10000
parallel=2
roots=1
runtime="$repo_root/target/release/berth-runc"

die() { echo "$prog: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
    case $1 in
        -n) runs=$2; shift 2 ;;
        -j) parallel=$2; shift 2 ;;
        --runtime) runtime=$2; shift 2 ;;
        --roots) roots=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ $(id -u) == 0 ]] || die "must run as root"
[[ -x $runtime ]] || die "no runtime at $runtime (cargo build --release -p berth-runc)"
runtime=$(realpath "$runtime")

tmp=$(mktemp -d /tmp/berth-parallel.XXXXXX)
cleanup() {
    local rc=$? r id
    trap - EXIT INT TERM
    set +e
    for r in "$tmp"/root*; do
        [[ -d $r ]] || continue
        for id in $(ls -A "$r"); do
            "$runtime" --root "$r" delete --force "$id" >/dev/null 2>&1
        done
    done
    rm -rf --one-file-system "$tmp"
    exit "$rc"
}
trap cleanup EXIT INT TERM

# --- bundle ---------------------------------------------------------------------------
rootfs="$tmp/bundle/rootfs"
mkdir -p "$rootfs"/{bin,proc,dev,sys,tmp}
if busybox=$(command -v busybox) && file -L "$busybox" | grep -q 'statically linked'; then
    cp -L "$busybox" "$rootfs/bin/busybox"
    ln -s busybox "$rootfs/bin/true"
else
    true_bin=$(command -v true)
    cp -L "$(realpath "$true_bin")" "$rootfs/bin/true"
    for lib in $(ldd "$true_bin" | grep -o '/[^ ]*'); do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
fi
"$runtime" spec --bundle "$tmp/bundle" 2>/dev/null || (cd "$tmp/bundle" && "$runtime" spec)
python3 - "$tmp/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["root"] = {"path": "rootfs", "readonly": True}
c.get("linux", {}).pop("cgroupsPath", None)
json.dump(c, open(path, "w"))
PY
for ((r = 0; r < roots; r++)); do mkdir -p "$tmp/root$r"; done

# --- the loop ---------------------------------------------------------------------------
mkdir -p "$tmp/out"
export runtime tmp roots
one() {
    local i=$1 r=$(( $1 % roots ))
    timeout 60 "$runtime" --root "$tmp/root$r" run --bundle "$tmp/bundle" "id$i" \
        >/dev/null 2>"$tmp/out/$i.err"
    local rc=$?
    if [[ $rc == 0 ]]; then rm -f "$tmp/out/$i.err"; else echo "$rc" >"$tmp/out/$i.rc"; fi
}
export -f one
start=$(date +%s.%N)
seq 1 "$runs" | xargs -P "$parallel" -I{} bash -c 'one {}'
end=$(date +%s.%N)

failures=$(find "$tmp/out" -name '*.rc' | wc -l)
hangs=$(grep -lx 124 "$tmp"/out/*.rc 2>/dev/null | wc -l || true)
printf 'runs=%d parallel=%d roots=%d hangs=%d failures=%d seconds=%.1f\n' \
    "$runs" "$parallel" "$roots" "$hangs" "$failures" "$(echo "$end - $start" | bc)"
if [[ $failures -gt 0 ]]; then
    cat "$tmp"/out/*.err 2>/dev/null | sort | uniq -c | sort -rn | head -5
fi

# --- nothing left behind -----------------------------------------------------------------
left=0
for r in "$tmp"/root*; do
    if [[ -n $(ls -A "$r") ]]; then echo "left in $r: $(ls -A "$r" | head -5)"; left=1; fi
done
# The runtime's default parent of each root (berth-runc's `default_parent`: FNV-1a of
# the root's real path), and any container's level below some berth parent.
parents=$(python3 - "$tmp"/root* <<'PY'
import os, sys
for root in sys.argv[1:]:
    h = 0xcbf29ce484222325
    for b in os.path.realpath(root).encode():
        h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
    print("berth-%012x" % (h >> 16))
PY
)
extra=$(for p in $parents; do ls -d /sys/fs/cgroup/*/"$p" /sys/fs/cgroup/"$p" 2>/dev/null; done
        find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*/berth*/id[0-9]*' 2>/dev/null)
if [[ -n $extra ]]; then echo "cgroups left: $(echo "$extra" | head -5)"; left=1; fi
[[ $left == 0 ]] && echo "nothing left behind"
[[ $failures == 0 && $left == 0 ]]
