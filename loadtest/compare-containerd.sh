#!/usr/bin/env bash
# compare-containerd.sh — the same burst against containerd + runc and against berthd, in
# one run, on this machine: C parallel clients start containers running `sleep infinity`
# until all run; prints both rates (starts/second) and their ratio.
#
# containerd: a private daemon (its own config, root, state and socket under a temp dir,
# CRI off), an image built here from the host's sleep and sh (no download) and imported
# with `ctr images import`, and C parallel `ctr run -d` (each returns once its task runs).
# berthd: `berth-loadtest --containers N --concurrency C` (its own berthd, its own temp dir).
#
# Usage: compare-containerd.sh [-n N] [-c C] [--containerd-n N] [--runc PATH]
#                              [--loadtest PATH] [--timeout SECS] [--image REF]
#                              [-- EXTRA LOADTEST ARGS]
#   -n N            containers for berthd (default 1000)
#   -c C            parallel clients on both sides (default 10, the seed's worker count)
#   --containerd-n  containers for containerd (default: N, at most 200 — it runs at
#                   about 15/s here, so 1000 would take over a minute)
#   --runc PATH     the runtime containerd's shim runs (default: runc on PATH)
#   --loadtest PATH berth-loadtest binary (default: build it with cargo --release)
#   --timeout SECS  bound of each side's burst (default 600)
#   --image REF     both sides run this image from a registry (it must have `sleep`;
#                   loopback registries over plain HTTP): containerd pulls it with
#                   `ctr images pull --plain-http`, berthd with `berth-loadtest --image`
# Run as root. Installs Debian's containerd package if it is missing. Everything it made
# (tasks, containers, snapshots, image, daemon, shims, mounts, cgroups, dirs) is removed
# on exit, also on Ctrl-C. Exit status 0 when both bursts ran every container.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(cd "$here/.." && pwd)

n=1000 c=10 cn="" runc_bin="" loadtest="" T=600 ref="" extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift 2 ;;
        -c) c=$2; shift 2 ;;
        --containerd-n) cn=$2; shift 2 ;;
        --runc) runc_bin=$2; shift 2 ;;
        --loadtest) loadtest=$2; shift 2 ;;
        --timeout) T=$2; shift 2 ;;
        --image) ref=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$cn" ] || cn=$(( n < 200 ? n : 200 ))

say() { printf '==> %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    say "installing containerd (apt-get)"
    apt-get install -y containerd >/dev/null || { apt-get update >/dev/null && apt-get install -y containerd >/dev/null; } \
        || { echo "cannot install containerd" >&2; exit 2; }
fi
for tool in containerd ctr containerd-shim-runc-v2 python3 ldd timeout xargs; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
[ -n "$runc_bin" ] || runc_bin=$(command -v runc) || { echo "no runc on PATH: pass --runc" >&2; exit 2; }

if [ -z "$loadtest" ]; then
    say "building berth-loadtest, berthd, berth-shim, berth-runc (cargo build --release)"
    (cd "$workspace" && cargo build --release -q -p berth-loadtest -p berthd -p berth-runc -p berth-shim) \
        || { echo "cargo build failed" >&2; exit 1; }
    loadtest=$workspace/target/release/berth-loadtest
fi

# ---------------------------------------------------------------- names and cleanup
tmp=$(mktemp -d /tmp/berth-compare.XXXXXX)
chmod 0711 "$tmp"
tag=$(basename "$tmp" | cut -d. -f2 | tr 'A-Z' 'a-z')
ns=berth-compare-$tag
image=localhost/berth-compare:$tag
sock=$tmp/containerd.sock
containerd_pid=""
made_run_containerd=0; [ -d /run/containerd ] || made_run_containerd=1

ctr_() { timeout -k 5 60 ctr --address "$sock" --namespace "$ns" "$@"; }
our_shims() {
    local p
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "containerd-shim-runc-v2 .*-address $sock " \
            && echo "${p#/proc/}"
    done
    return 0
}
our_cgroups() { find /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns" -depth -type d 2>/dev/null; return 0; }
our_mounts() { awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r; }

# Remove the containerd side's containers (kill, delete task, delete container and its
# snapshot), C at a time.
remove_containers() {
    local ids
    ids=$(ctr_ containers ls -q 2>/dev/null) || return 0
    [ -n "$ids" ] || return 0
    printf '%s\n' $ids | xargs -P "$c" -I{} sh -c '
        ctr --address "$0" --namespace "$1" tasks kill -s KILL {} >/dev/null 2>&1
        for i in 1 2 3 4 5 6 7 8 9 10; do
            ctr --address "$0" --namespace "$1" tasks delete {} >/dev/null 2>&1 && break
            ctr --address "$0" --namespace "$1" tasks ls -q 2>/dev/null | grep -qx {} || break
            sleep 0.2
        done
        ctr --address "$0" --namespace "$1" containers delete {} >/dev/null 2>&1' "$sock" "$ns"
}

stop_containerd() {
    [ -n "$containerd_pid" ] || return 0
    if kill -0 "$containerd_pid" 2>/dev/null; then
        remove_containers
        ctr_ images rm "$image" >/dev/null 2>&1
        kill -TERM "$containerd_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$containerd_pid" 2>/dev/null
    fi
    wait "$containerd_pid" 2>/dev/null
    containerd_pid=""
    local p m cg
    for p in $(our_shims); do kill -KILL "$p" 2>/dev/null; done
    for cg in $(our_cgroups); do
        for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    done
    sleep 0.3
    for m in $(our_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    for cg in $(our_cgroups); do rmdir "$cg" 2>/dev/null; done
    # The shims' sockets live in /run/containerd/s whatever the config says, named
    # sha256(<address>/<namespace>/<id>).
    python3 -c '
import hashlib, os, sys
sock, ns, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    p = "/run/containerd/s/" + hashlib.sha256(f"{sock}/{ns}/cd-{i}".encode()).hexdigest()
    if os.path.exists(p):
        os.remove(p)' "$sock" "$ns" "$cn" 2>/dev/null
    rmdir "/run/containerd/runc/$ns" 2>/dev/null
    [ "$made_run_containerd" = 1 ] && find /run/containerd -depth -type d -empty -delete 2>/dev/null
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_containerd
    rm -rf "$tmp"
    local left=""
    [ -e "$tmp" ] && left="$left $tmp"
    [ -n "$(our_mounts)" ] && left="$left mounts"
    [ -n "$(our_cgroups)" ] && left="$left cgroups"
    [ -n "$(our_shims)" ] && left="$left shims"
    if [ -n "$left" ]; then echo "left behind:$left" >&2; rc=1; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT TERM

# ---------------------------------------------------------------- image from host binaries
if [ -n "$ref" ]; then
    image=$ref
    extra=(--image "$ref" "${extra[@]}")
else
say "image $image from the host's sleep and sh"
rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,run}
for b in sleep sh; do
    path=$(type -P "$b")
    cp -L "$path" "$rootfs/bin/$b"
    for lib in $(ldd "$(readlink -f "$path")" 2>/dev/null | grep -oE '/[^ ]+'); do
        mkdir -p "$rootfs$(dirname "$lib")"
        [ -e "$rootfs$lib" ] || cp -L "$lib" "$rootfs$lib"
    done
done
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
python3 "$here/../runtime-shim/scripts/oci-image.py" "$rootfs" "$tmp/image.tar" "$image" "$arch" \
    || { echo "image build failed" >&2; exit 1; }
fi

# ---------------------------------------------------------------- private containerd
cat >"$tmp/config.toml" <<TOML
version = 2
root = "$tmp/root"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$tmp/opt"
TOML
say "private containerd ($(containerd --version | awk '{print $3}')) in $tmp"
containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 150); do ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done
ctr_ version >/dev/null 2>&1 || { tail -5 "$tmp/containerd.log"; echo "containerd did not start" >&2; exit 1; }
snapshotter=native
ctr_ plugins ls | awk '$1 == "io.containerd.snapshotter.v1" && $2 == "overlayfs" { print $4 }' | grep -qx ok \
    && snapshotter=overlayfs
if [ -n "$ref" ]; then
    say "ctr images pull --plain-http $ref"
    ctr_ images pull --plain-http --snapshotter "$snapshotter" "$ref" >/dev/null \
        || { echo "ctr images pull failed" >&2; exit 1; }
else
    ctr_ images import --snapshotter "$snapshotter" "$tmp/image.tar" >/dev/null \
        || { echo "ctr images import failed" >&2; exit 1; }
fi
mkdir -p "$tmp/runc-root" "$tmp/fifo"

# ---------------------------------------------------------------- containerd burst
say "containerd + $(basename "$runc_bin"): $cn containers, $c parallel ctr run -d (snapshotter $snapshotter)"
: >"$tmp/cd-failed"
t0=$(date +%s.%N)
seq 0 $((cn - 1)) | timeout -k 10 "$T" xargs -P "$c" -I{} sh -c '
    ctr --address "$0" --namespace "$1" run -d --snapshotter "$2" --runc-binary "$3" \
        --runc-root "$4" --fifo-dir "$5" "$6" "cd-{}" sleep infinity </dev/null >/dev/null 2>>"$7.log" \
        || echo {} >>"$7"' "$sock" "$ns" "$snapshotter" "$runc_bin" "$tmp/runc-root" "$tmp/fifo" "$image" "$tmp/cd-failed"
t1=$(date +%s.%N)
cd_running=$(ctr_ tasks ls 2>/dev/null | awk '$3 == "RUNNING"' | wc -l)
cd_secs=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
cd_rate=$(python3 -c "print(f'{$cd_running / max($t1 - $t0, 1e-9):.1f}')")
echo "    $cd_running of $cn running after $cd_secs s: $cd_rate starts/second"
[ -s "$tmp/cd-failed.log" ] && sed 's/^/    ctr: /' "$tmp/cd-failed.log" | sort | uniq -c | head -5
say "removing containerd's containers and stopping it"
stop_containerd

# ---------------------------------------------------------------- berthd burst
say "berthd (berth-loadtest): $n containers, $c parallel clients"
"$loadtest" --containers "$n" --concurrency "$c" --timeout "$T" --json "${extra[@]}" >"$tmp/berth.json"
lt_rc=$?
read -r b_running b_secs b_rate b_p50 b_p99 <<<"$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_ms"]
print(r["running"], "%.2f" % r["seconds"], "%.1f" % r["starts_per_second"],
      "%.0f" % lat["p50"], "%.0f" % lat["p99"])' "$tmp/berth.json")"
if [ -z "${b_rate:-}" ]; then echo "berth-loadtest gave no report (exit $lt_rc)" >&2; exit 1; fi
echo "    $b_running of $n running after $b_secs s: $b_rate starts/second (request→running p50 $b_p50 ms, p99 $b_p99 ms)"

# ---------------------------------------------------------------- result
ratio=$(python3 -c "print(f'{$b_rate / $cd_rate:.1f}' if $cd_rate > 0 else 'inf')")
echo
printf '%-34s %8s starts/s  (%s containers, %s parallel)\n' "containerd $(containerd --version | awk '{print $3}') + $(basename "$runc_bin")" "$cd_rate" "$cn" "$c"
printf '%-34s %8s starts/s  (%s containers, %s parallel)\n' "berthd (built-in runtime)" "$b_rate" "$n" "$c"
printf '%-34s %8sx\n' "ratio berthd / containerd" "$ratio"
[ "$cd_running" = "$cn" ] && [ "$b_running" = "$n" ] && [ "$lt_rc" = 0 ]
