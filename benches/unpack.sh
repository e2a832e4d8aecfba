#!/usr/bin/env bash
# Side-by-side layer unpack: Berth's apply_layer (decompress, hash, apply with
# whiteouts and path checks) against the floor, `gzip -dc | tar -x` and
# `zstd -dc | tar -x`, on the same layer, interleaved, each run into a fresh directory.
#
# The layer is built from the host's own files (no downloads): by default
# /usr/lib/python3* and /usr/share/doc (here ≈ 215 MB, 10k files, 94 MB gzip).
#
# Usage: benches/unpack.sh [-n RUNS] [--dir DIR] [--src PATH]...
#   --dir  where the fresh directories go (default /dev/shm: tmpfs, so the ext4
#          slow-after-delete effect does not skew the figures; say which you used)
# Must run as root (ownership). Prints each run and the medians, and Berth/floor ratios.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
runs=5
base=/dev/shm
srcs=()
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs=$2; shift 2 ;;
        --dir) base=$2; shift 2 ;;
        --src) srcs+=("$2"); shift 2 ;;
        *) echo "usage: $0 [-n RUNS] [--dir DIR] [--src PATH]..." >&2; exit 2 ;;
    esac
done
[ ${#srcs[@]} -gt 0 ] || srcs=(/usr/lib/python3* /usr/share/doc)

cargo build --release --offline -q -p berth-images --example apply_layer \
    --manifest-path "$repo_root/Cargo.toml"
probe="$repo_root/target/release/examples/apply_layer"

work=$(mktemp -d "$base/berth-unpack-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
rel=()
for s in "${srcs[@]}"; do rel+=("${s#/}"); done
tar -C / --numeric-owner -cf "$work/layer.tar" "${rel[@]}" 2>/dev/null || true
gzip -6 -c "$work/layer.tar" >"$work/layer.tar.gz"
zstd -3 -q -c "$work/layer.tar" >"$work/layer.tar.zst"
diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
echo "layer: $(du -m "$work/layer.tar" | cut -f1) MB, $(tar -tf "$work/layer.tar" | wc -l) entries," \
    "gzip $(du -m "$work/layer.tar.gz" | cut -f1) MB, zstd $(du -m "$work/layer.tar.zst" | cut -f1) MB; into $base"

# Seconds (wall) of one command, into a fresh directory that is removed afterwards.
timed() {
    local dest="$work/out.$RANDOM$RANDOM"
    mkdir "$dest"
    local t0 t1
    t0=$(date +%s.%N)
    "$@" "$dest" >/dev/null
    t1=$(date +%s.%N)
    rm -rf "$dest"
    echo "$t1 - $t0" | bc
}
berth_gz() { "$probe" "$work/layer.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip "$1" "$diff_id"; }
berth_zst() { "$probe" "$work/layer.tar.zst" application/vnd.oci.image.layer.v1.tar+zstd "$1" "$diff_id"; }
floor_gz() { gzip -dc "$work/layer.tar.gz" | tar -x -C "$1"; }
floor_zst() { zstd -dc "$work/layer.tar.zst" | tar -x -C "$1"; }

declare -A times
for i in $(seq "$runs"); do
    for k in berth_gz floor_gz berth_zst floor_zst; do
        t=$(timed "$k")
        times[$k]+="$t "
        printf 'run %d %-10s %.3f s\n' "$i" "$k" "$t"
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for c in gz zst; do
    b=$(echo "${times[berth_$c]}" | median)
    f=$(echo "${times[floor_$c]}" | median)
    printf '%-4s berth %.3f s   %s -dc | tar -x %.3f s   ratio %.2f\n' "$c" "$b" \
        "$([ $c = gz ] && echo gzip || echo zstd)" "$f" "$(echo "$b / $f" | bc -l)"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (nproc $(nproc))"
