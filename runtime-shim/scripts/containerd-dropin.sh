#!/usr/bin/env bash
# containerd-dropin.sh — show end to end that containerd can use berth-runc in place of runc.
#
# A private containerd (its own config, root, state and socket in a temp dir; CRI off)
# runs containers through its runc shim (io.containerd.runc.v2) with the runtime binary
# pointed at berth-runc (`ctr run --runc-binary`). The image is built here from the host's
# own binaries and their shared libraries, packed as an OCI image layout tarball and
# imported with `ctr images import`: no registry, no downloads.
#
# Usage: containerd-dropin.sh [--berth PATH | --runc PATH] [--trace] [--keep-going] [--extra]
#                             [--snapshotter overlayfs|native] [--timeout SECS] [--save-logs DIR]
#   --berth PATH    berth-runc binary to test (default: build it in release and use
#                   target/release/berth-runc)
#   --runc PATH     test this runc binary instead (e.g. /usr/sbin/runc), to check the script
#   --trace         point the shim at a wrapper that logs each runtime call (argv, exit
#                   status, the bundle's config.json, exec's process.json, the --log file on
#                   failure) to <tmp>/trace, and print the trace at the end
#   --keep-going    do not stop at the first failed check (later steps may still fail)
#   --extra         after the main flow, probe more of what containerd can ask of the runtime
#                   (exit codes, stdin, tty, kill --all, pause/resume, limits, metrics, seccomp,
#                   caps, read-only, privileged, no-pivot, bind mounts, host/joined namespaces,
#                   user namespaces, checkpoint); each probe goes through the logging wrapper
#                   and, on failure, shows the runtime calls made for it. Also runs every
#                   command line go-runc can build against a missing container, to list the
#                   ones the runtime rejects at parse time. Failures count.
#   --snapshotter   force a snapshotter (default: overlayfs if containerd loads it, else native)
#   --timeout SECS  bound of every single wait/command (default 30)
#   --save-logs DIR copy containerd's log, the trace and the bundle configs to DIR at exit
# Run as root. Exits 0 and prints "PASS" when every check passed, else prints "FAIL" and
# exits 1. Everything it made (processes, mounts, cgroups, files) is removed on exit.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(cd "$here/../.." && pwd)

runtime="" mode=berth save_logs="" extra=0 trace=0 keep_going=0 snapshotter="" T=30
while [ $# -gt 0 ]; do
    case "$1" in
        --berth) runtime=$2; mode=berth; shift 2 ;;
        --runc) runtime=$2; mode=runc; shift 2 ;;
        --trace) trace=1; shift ;;
        --keep-going) keep_going=1; shift ;;
        --extra) extra=1; shift ;;
        --snapshotter) snapshotter=$2; shift 2 ;;
        --timeout) T=$2; shift 2 ;;
        --save-logs) save_logs=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

# ---------------------------------------------------------------- output helpers
failures=0
step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
fail() {
    failures=$((failures + 1))
    printf '    FAILED: %s\n' "$*"
    if [ "$keep_going" = 0 ]; then exit 1; fi
}
die() { printf '    FAILED: %s\n' "$*"; failures=$((failures + 1)); exit 1; }
# Indent a command's output under its step.
indent() { sed 's/^/      | /'; }

# wait_until SECS DESCRIPTION COMMAND... — poll COMMAND until it succeeds or time runs out.
wait_until() {
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            printf '    timed out after %ss waiting for: %s\n' "$secs" "$what"
            return 1
        fi
        sleep 0.2
    done
}

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
for tool in containerd ctr containerd-shim-runc-v2 python3 ldd timeout; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done

# ---------------------------------------------------------------- the runtime under test
if [ -z "$runtime" ]; then
    step "build berth-runc (cargo build --release -p berth-runc)"
    (cd "$workspace" && timeout 1800 cargo build --release -p berth-runc 2>&1 | tail -3 | indent) \
        || { echo "FAIL: cargo build failed"; exit 1; }
    runtime=$workspace/target/release/berth-runc
fi
[ -x "$runtime" ] || { echo "not an executable: $runtime" >&2; exit 2; }
runtime=$(readlink -f "$runtime")

# ---------------------------------------------------------------- names and the trap
tmp=$(mktemp -d /tmp/berth-dropin.XXXXXX)
suffix=$(basename "$tmp" | cut -d. -f2 | tr 'A-Z' 'a-z')
ns=berth-dropin-$suffix          # containerd namespace (also the cgroup parent /<ns>/<id>)
id=dropin-$suffix                # the detached container
fg_id=dropin-fg-$suffix          # the foreground `ctr run --rm` container
image=localhost/berth-dropin:$suffix
sock=$tmp/containerd.sock
runc_root=$tmp/runc-root         # the shim runs `<runtime> --root $runc_root/$ns ...`
fifo_dir=$tmp/fifo
cfg=$tmp/config.toml
clog=$tmp/containerd.log
containerd_pid=""
created_run_containerd=0; [ -d /run/containerd ] || created_run_containerd=1
created_run_containerd_s=0; [ -d /run/containerd/s ] || created_run_containerd_s=1
created_run_containerd_runc=0; [ -d /run/containerd/runc ] || created_run_containerd_runc=1
mkdir -p "$fifo_dir" "$runc_root" "$tmp/bin"
chmod 0711 "$tmp"   # bundles live below: a user-namespaced container's root must traverse it
# Run a private copy, so a concurrent `cargo build` cannot swap the binary mid-run.
cp "$runtime" "$tmp/bin/$(basename "$runtime")"
runtime_origin=$runtime
runtime=$tmp/bin/$(basename "$runtime")

ctr_() { timeout -k 5 "$T" ctr --address "$sock" --namespace "$ns" "$@"; }

# The shim's ttrpc socket: containerd 1.6 puts it at /run/containerd/s/sha256(<address>/<ns>/<id>).
shim_socket() { printf '/run/containerd/s/%s' "$(printf '%s' "$sock/$ns/$1" | sha256sum | cut -d' ' -f1)"; }

# Pids of the shims our containerd started (they carry `-address <our socket>`).
our_shims() {
    local p
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "containerd-shim-runc-v2 .*-address $sock " \
            && echo "${p#/proc/}"
    done
    return 0
}
shim_of() { # shim pid of container $1
    local p
    for p in $(our_shims); do
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- "-id $1 " && echo "$p"
    done
    return 0
}
# Cgroup directories under the namespace's parent, deepest first.
our_cgroups() { find /sys/fs/cgroup/*/"$ns" -depth -type d 2>/dev/null; return 0; }
our_mounts() { awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r; }

print_diagnostics() {
    printf '\n---- diagnostics\n'
    local f
    for f in $(find "$tmp/state" -name log.json 2>/dev/null); do
        printf -- '-- %s\n' "$f"; tail -n 20 "$f"
    done
    if [ -f "$clog" ]; then
        printf -- '-- containerd log (errors/warnings and shim lines, last 40)\n'
        grep -E 'level=(error|warning|fatal)|shim|runc' "$clog" | grep -v 'skip loading plugin' | tail -n 40
    fi
    print_trace
}
print_trace() {
    if [ "$trace" = 1 ] && [ -s "$tmp/trace/calls.log" ]; then
        printf -- '-- runtime calls made by the shim (%s)\n' "$tmp/trace/calls.log"
        cat "$tmp/trace/calls.log"
    fi
}

cleanup() {
    local rc=$? p c m
    trap - EXIT INT TERM
    [ "$failures" -gt 0 ] && rc=1
    if [ "$rc" != 0 ]; then print_diagnostics; fi
    printf '\n==> cleanup\n'
    if [ -n "$save_logs" ]; then
        mkdir -p "$save_logs"
        cp "$clog" "$save_logs/" 2>/dev/null
        [ -d "$tmp/trace" ] && cp "$tmp/trace"/*.log "$tmp/trace"/*.json "$save_logs/" 2>/dev/null
        info "logs saved in $save_logs"
    fi
    # Containers first, through containerd, while it is still up.
    if [ -n "$containerd_pid" ] && kill -0 "$containerd_pid" 2>/dev/null; then
        for c in $(timeout 10 ctr --address "$sock" --namespace "$ns" containers ls -q 2>/dev/null); do
            timeout 10 ctr --address "$sock" --namespace "$ns" tasks kill -s KILL "$c" >/dev/null 2>&1
            sleep 0.3
            timeout 10 ctr --address "$sock" --namespace "$ns" tasks delete -f "$c" >/dev/null 2>&1
            timeout 10 ctr --address "$sock" --namespace "$ns" containers delete "$c" >/dev/null 2>&1
        done
        kill -TERM "$containerd_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$containerd_pid" 2>/dev/null
        wait "$containerd_pid" 2>/dev/null
    fi
    # Shims of our containerd, then any process still in our cgroups (the containers').
    for p in $(our_shims); do kill -KILL "$p" 2>/dev/null; done
    for c in $(our_cgroups); do
        for p in $(cat "$c/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    done
    sleep 0.3
    for m in $(our_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    for c in $(our_cgroups); do rmdir "$c" 2>/dev/null; done
    for c in "$id" "$fg_id"; do rm -f "$(shim_socket "$c")"; done
    [ "$created_run_containerd_s" = 1 ] && rmdir /run/containerd/s 2>/dev/null
    rmdir "/run/containerd/runc/$ns" 2>/dev/null
    [ "$created_run_containerd_runc" = 1 ] && rmdir /run/containerd/runc 2>/dev/null
    [ "$created_run_containerd" = 1 ] && rmdir /run/containerd/fifo /run/containerd 2>/dev/null
    rm -rf "$tmp"
    local left=""
    [ -e "$tmp" ] && left="$left tmpdir"
    [ -n "$(our_mounts)" ] && left="$left mounts"
    [ -n "$(our_cgroups)" ] && left="$left cgroups"
    [ -n "$(our_shims)" ] && left="$left shims"
    if [ -n "$left" ]; then info "cleanup left behind:$left"; rc=1; else ok "nothing left behind"; fi
    if [ "$rc" = 0 ]; then
        printf '\nPASS: containerd ran, exec-ed into, stopped and deleted a container through %s (%s)\n' "$mode" "$runtime_origin"
    else
        printf '\nFAIL: containerd with %s (%s): %d check(s) failed (exit %s)\n' "$mode" "$runtime_origin" "$failures" "$rc"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

echo "runtime under test: $mode $runtime_origin ($("$runtime" --version 2>&1 | head -1), sha256 $(sha256sum <"$runtime" | cut -c1-12)), run from a copy in $tmp/bin"
echo "containerd: $(containerd --version)"
echo "temp dir: $tmp   namespace: $ns   container: $id"

# ---------------------------------------------------------------- the shim's runtime binary
# A wrapper that logs each call (used by --trace and by the --extra probes).
mkdir -p "$tmp/trace"
wrapper=$tmp/trace/runtime-wrapper
cat >"$wrapper" <<EOF
#!/bin/bash
# Logs each call the shim makes, then runs the real runtime with the same stdio.
real=$(printf '%q' "$runtime")
dir=$(printf '%q' "$tmp/trace")
EOF
cat >>"$wrapper" <<'EOF'
log=$dir/calls.log
n=${@: -1}
{ printf '%s $' "$(date +%T.%3N)"; printf ' %q' "$(basename "$real")" "$@"; printf '\n'; } >>"$log"
prev="" logfile="" cmd=""
for a in "$@"; do
    case "$prev" in
        --bundle|-b) [ -f "$a/config.json" ] && cp "$a/config.json" "$dir/config-$n.json" \
                     && echo "      (bundle config saved as $dir/config-$n.json)" >>"$log" ;;
        --process) { echo "      process.json: $(cat "$a")"; } >>"$log" ;;
        --log) logfile=$a ;;
    esac
    prev=$a
done
t0=$EPOCHREALTIME
"$real" "$@"
rc=$?
t1=$EPOCHREALTIME
ms=$(( (${t1/./} - ${t0/./}) / 1000 ))
echo "      -> exit status $rc after ${ms} ms" >>"$log"
if [ $rc != 0 ]; then
    [ -n "$logfile" ] && [ -f "$logfile" ] && tail -n 3 "$logfile" | sed 's/^/      log: /' >>"$log"
fi
exit $rc
EOF
chmod +x "$wrapper"
binary=$runtime
[ "$trace" = 1 ] && binary=$wrapper

# ---------------------------------------------------------------- rootfs and image
step "build a root filesystem from the host's binaries"
rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,run,root}
chmod 1777 "$rootfs/tmp"
copy_with_libs() { # copy a binary (the real file) to /bin/<name> and every library ldd names
    local name=$1 path lib
    path=$(type -P "$name") || die "no $name binary on this host"
    cp -L "$path" "$rootfs/bin/$name"
    for lib in $(ldd "$(readlink -f "$path")" 2>/dev/null | grep -oE '(=> )?/[^ ]+' | sed 's/^=> //'); do
        [ -e "$rootfs$lib" ] && continue
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
}
for b in sh sleep cat echo ls id hostname ps true env grep sed wc tty readlink head tr mkdir; do copy_with_libs "$b"; done
echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/etc/passwd"
echo "root:x:0:" >"$rootfs/etc/group"
echo "berth-dropin" >"$rootfs/etc/hostname"
info "$(find "$rootfs" -type f | wc -l) files, $(du -sh "$rootfs" | cut -f1): $(ls "$rootfs/bin" | tr '\n' ' ')"
info "libraries: $(find "$rootfs" -path '*lib*' -type f | sed "s|$rootfs||" | tr '\n' ' ')"

step "pack it as an OCI image layout tarball"
case "$(uname -m)" in
    x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; armv7l) arch=arm ;; *) arch=$(uname -m) ;;
esac
python3 "$here/oci-image.py" "$rootfs" "$tmp/image.tar" "$image" "$arch" | indent \
    || die "image build failed"
tar -tf "$tmp/image.tar" | indent

# ---------------------------------------------------------------- private containerd
step "start a private containerd"
cat >"$cfg" <<EOF
version = 2
root = "$tmp/root"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = "$tmp/opt"
EOF
# `runc` in containerd's PATH is the runtime under test too (through the logging wrapper), so
# that a container whose runtime options lose BinaryName (ctr drops them with --uidmap) still
# runs on it and never on the host's runc; such containers keep their state in the shim's
# default root, /run/containerd/runc/<namespace>.
mkdir -p "$tmp/path"
ln -s "$wrapper" "$tmp/path/runc"
PATH="$tmp/path:$PATH" containerd --config "$cfg" >"$clog" 2>&1 &
containerd_pid=$!
info "containerd pid $containerd_pid, config $cfg, log $clog"
wait_until "$T" "ctr --address $sock version" ctr_ version || die "containerd did not answer"
kill -0 "$containerd_pid" 2>/dev/null || die "containerd exited"
ctr_ version | indent
ok "containerd answers on $sock"

if [ -z "$snapshotter" ]; then
    if ctr_ plugins ls | awk '$1 == "io.containerd.snapshotter.v1" && $2 == "overlayfs" { print $4 }' | grep -qx ok; then
        snapshotter=overlayfs
    else
        snapshotter=native
    fi
fi
info "snapshotter: $snapshotter"

step "import the image"
ctr_ images import --snapshotter "$snapshotter" "$tmp/image.tar" 2>&1 | indent
ctr_ images ls -q | grep -qx "$image" || die "image $image not in ctr images ls"
ok "$(ctr_ images ls | awk -v i="$image" '$1 == i')"

run_flags=(--runc-binary "$binary" --runc-root "$runc_root" --fifo-dir "$fifo_dir" --snapshotter "$snapshotter")

# ---------------------------------------------------------------- foreground run
step "ctr run --rm (foreground): echo hello"
out=$(ctr_ run --rm "${run_flags[@]}" "$image" "$fg_id" echo hello </dev/null 2>&1)
rc=$?
printf '%s\n' "$out" | indent
if [ $rc = 0 ] && [ "$out" = hello ]; then ok "printed hello, exit 0"; else fail "ctr run --rm: exit $rc, output above"; fi
if ctr_ containers ls -q | grep -qx "$fg_id"; then fail "--rm left container $fg_id"; else ok "--rm removed $fg_id"; fi

# ---------------------------------------------------------------- detached run
step "ctr run -d: sleep 1000"
ctr_ run -d "${run_flags[@]}" "$image" "$id" sleep 1000 </dev/null 2>&1 | indent
[ "${PIPESTATUS[0]}" = 0 ] || die "ctr run -d failed"

step "ctr task ls shows it RUNNING with a pid"
task_status() { ctr_ tasks ls | awk -v id="$1" '$1 == id { print $3 }'; }
is_running() { [ "$(task_status "$id")" = RUNNING ]; }
wait_until "$T" "task $id RUNNING" is_running || { ctr_ tasks ls | indent; die "task not RUNNING"; }
ctr_ tasks ls | indent
pid=$(ctr_ tasks ls | awk -v id="$id" '$1 == id { print $2 }')
[ -n "$pid" ] && [ "$pid" -gt 0 ] && [ -d "/proc/$pid" ] || die "no live pid for $id (got '$pid')"
ok "RUNNING, pid $pid: $(tr '\0' ' ' </proc/$pid/cmdline)"
shim=$(shim_of "$id")
ppid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status")
if [ -n "$shim" ] && [ "$ppid" = "$shim" ]; then
    ok "its parent is the shim (pid $shim: $(tr '\0' ' ' </proc/$shim/cmdline | cut -c1-60)…)"
else
    fail "parent of $pid is $ppid, shim is '$shim'"
fi

step "the task is in new namespaces (host: pid $$)"
for n in pid mnt net uts ipc; do
    theirs=$(readlink "/proc/$pid/ns/$n") ours=$(readlink "/proc/$$/ns/$n")
    if [ -n "$theirs" ] && [ "$theirs" != "$ours" ]; then ok "$n: $theirs (host $ours)"; else fail "$n: $theirs same as host $ours"; fi
done
nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status")
if [ "$nspid" = 1 ]; then ok "it is pid 1 in its pid namespace (NSpid: $(awk '/^NSpid:/ { $1=""; print }' /proc/$pid/status))"; else fail "NSpid $nspid, expected 1"; fi
if [ "$(readlink "/proc/$pid/root")" = / ] && [ "$(stat -Lc %i /proc/$pid/root)" = "$(stat -c %i /)" ]; then
    fail "its root is the host's root"
else
    ok "its root is not the host's (/proc/$pid/root/bin: $(ls /proc/$pid/root/bin | tr '\n' ' '))"
fi

step "the runtime under test made it: $(basename "$runtime") --root $runc_root/$ns list / state"
list=$("$runtime" --root "$runc_root/$ns" list 2>&1)
printf '%s\n' "$list" | indent
if printf '%s\n' "$list" | awk -v id="$id" -v pid="$pid" '$1 == id && $2 == pid && $3 == "running" { f = 1 } END { exit !f }'; then
    ok "$id listed as running with pid $pid"
else
    fail "$id not listed as running with pid $pid"
fi
state=$("$runtime" --root "$runc_root/$ns" state "$id" 2>&1)
printf '%s\n' "$state" | indent
if printf '%s' "$state" | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["status"]=="running" and s["pid"]=='"$pid"' else 1)' 2>/dev/null; then
    ok "state: running, pid $pid"
else
    fail "state of $id is not running with pid $pid"
fi

step "it is in the cgroup /$ns/$id"
grep -E "(memory|pids|cpu|devices|freezer)[^:]*:" "/proc/$pid/cgroup" | indent
if grep -q ":/$ns/$id\$" "/proc/$pid/cgroup"; then ok "cgroup path /$ns/$id"; else fail "not in /$ns/$id"; fi
cg_dirs=$(find /sys/fs/cgroup/*/"$ns/$id" -maxdepth 0 -type d 2>/dev/null | tr '\n' ' ')
info "cgroup dirs: $cg_dirs"

step "ctr task exec --exec-id x $id echo hi"
out=$(ctr_ tasks exec --exec-id x --fifo-dir "$fifo_dir" "$id" echo hi </dev/null 2>&1)
rc=$?
printf '%s\n' "$out" | indent
if [ $rc = 0 ] && [ "$out" = hi ]; then ok "printed hi, exit 0"; else fail "exec: exit $rc"; fi

step "ctr task exec: the container's pid 1 seen from inside"
out=$(ctr_ tasks exec --exec-id y --fifo-dir "$fifo_dir" "$id" cat /proc/1/cmdline </dev/null 2>&1 | tr '\0' ' ')
rc=$?
printf '%s\n' "$out" | indent
if [ $rc = 0 ] && [ "$out" = "sleep 1000 " ]; then ok "pid 1 inside is sleep 1000"; else fail "exec cat /proc/1/cmdline: '$out'"; fi

step "ctr task ps $id (the shim runs '<runtime> ps --format json')"
out=$(ctr_ tasks ps "$id" 2>&1)
rc=$?
printf '%s\n' "$out" | indent
if [ $rc = 0 ] && printf '%s\n' "$out" | awk -v pid="$pid" '$1 == pid { f = 1 } END { exit !f }'; then
    ok "lists pid $pid"
else
    fail "ctr task ps: exit $rc"
fi

step "ctr task kill -s KILL $id, wait for STOPPED"
ctr_ tasks kill -s KILL "$id" 2>&1 | indent
[ "${PIPESTATUS[0]}" = 0 ] || fail "ctr task kill failed"
is_stopped() { [ "$(task_status "$id")" = STOPPED ]; }
if wait_until "$T" "task $id STOPPED" is_stopped; then
    ctr_ tasks ls | indent
    ok "STOPPED"
else
    ctr_ tasks ls | indent
    fail "task not STOPPED"
fi
[ -d "/proc/$pid" ] && fail "pid $pid still exists" || ok "pid $pid is gone"

step "ctr task delete $id; ctr container delete $id"
ctr_ tasks delete "$id" 2>&1 | indent
[ "${PIPESTATUS[0]}" = 0 ] && ok "task deleted" || fail "ctr task delete failed"
ctr_ containers delete "$id" 2>&1 | indent
[ "${PIPESTATUS[0]}" = 0 ] && ok "container deleted" || fail "ctr container delete failed"

step "nothing is left"
if ctr_ tasks ls -q | grep -qx "$id"; then fail "task still listed"; else ok "no task"; fi
if ctr_ containers ls -q | grep -qx "$id"; then fail "container still listed"; else ok "no container"; fi
list=$("$runtime" --root "$runc_root/$ns" list -q 2>&1)
if printf '%s\n' "$list" | grep -qx "$id"; then fail "$(basename "$runtime") still lists $id"; else ok "$(basename "$runtime") list: no $id"; fi
left=$(find "$runc_root" -mindepth 2 2>/dev/null)
[ -z "$left" ] && ok "runtime root $runc_root/$ns is empty" || fail "runtime state left: $left"
left=$(find /sys/fs/cgroup/*/"$ns/$id" /sys/fs/cgroup/*/"$ns/$fg_id" -maxdepth 0 2>/dev/null | tr '\n' ' ')
[ -z "$left" ] && ok "no cgroup dirs /sys/fs/cgroup/*/$ns/{$id,$fg_id}" || fail "cgroups left: $left"
no_shim() { [ -z "$(shim_of "$id")" ] && [ -z "$(shim_of "$fg_id")" ]; }
if wait_until "$T" "shims to exit" no_shim; then ok "no shim process"; else fail "shim left: $(shim_of "$id") $(shim_of "$fg_id")"; fi
left=$(our_mounts | tr '\n' ' ')
[ -z "$left" ] && ok "no mounts under $tmp" || fail "mounts left: $left"
left=$(find "$tmp/state/io.containerd.runtime.v2.task/$ns" -mindepth 1 2>/dev/null | tr '\n' ' ')
[ -z "$left" ] && ok "no bundle left under the state dir" || fail "bundle files left: $left"
for c in "$id" "$fg_id"; do
    [ -e "$(shim_socket "$c")" ] && fail "shim socket left: $(shim_socket "$c")"
done
ok "no shim socket left in /run/containerd/s"
if grep -E 'level=(error|fatal)' "$clog" | grep -v 'skip loading plugin' | grep -q .; then
    info "containerd logged errors:"
    grep -E 'level=(error|fatal)' "$clog" | grep -v 'skip loading plugin' | tail -n 10 | indent
fi

# ---------------------------------------------------------------- --extra: more of what containerd asks
# Each probe runs its own container through the logging wrapper, checks one thing, removes
# the container, and on failure shows the runtime calls made for it.
if [ "$extra" = 1 ]; then
    pflags=(--runc-binary "$wrapper" --runc-root "$runc_root" --fifo-dir "$fifo_dir" --snapshotter "$snapshotter")
    probes_passed=() probes_failed=() probes_skipped=()
    pn=0
    note() { printf '    %s\n' "$*"; }
    # Remove a probe's container whatever state it is in.
    remove() {
        ctr_ tasks kill -a -s KILL "$1" >/dev/null 2>&1
        wait_until 10 "$1 stopped" sh -c "! timeout 5 ctr --address '$sock' --namespace '$ns' tasks ls | awk '\$1 == \"$1\" && \$3 != \"STOPPED\"' | grep -q ." 
        ctr_ tasks delete -f "$1" >/dev/null 2>&1
        ctr_ containers delete "$1" >/dev/null 2>&1
        return 0
    }
    # The calls the shim made for container $1 (from the wrapper's log).
    calls_of() {
        awk -v id="$1" '/^[0-9:.]+ \$/ { show = (index($0, " " id) > 0) } show' "$tmp/trace/calls.log" 2>/dev/null \
            | sed -E "s#--root [^ ]+ --log [^ ]+ --log-format json#[--root R --log <bundle>/log.json --log-format json]#; s#$tmp/state/io.containerd.runtime.v2.task/$ns/#<state>/#g; s#$tmp#<tmp>#g"
    }
    # A running container for probes that need one: start_probe ID [ctr run flags...] -- CMD...
    start_detached() {
        local pid_ c=$1; shift
        local flags=() ; while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done; shift
        ctr_ run -d "${pflags[@]}" "${flags[@]}" "$image" "$c" "$@" </dev/null >/dev/null 2>"$tmp/probe.err" \
            || { note "ctr run -d failed: $(cat "$tmp/probe.err")"; return 1; }
        wait_until "$T" "$c RUNNING" sh -c "timeout 5 ctr --address '$sock' --namespace '$ns' tasks ls | awk '\$1 == \"$c\" && \$3 == \"RUNNING\"' | grep -q ." \
            || { note "not RUNNING: $(ctr_ tasks ls | awk -v c="$c" '$1 == c')"; return 1; }
        ppid_=$(ctr_ tasks ls | awk -v c="$c" '$1 == c { print $2 }')
    }
    # probe NAME FUNCTION: run FUNCTION with a fresh container id, record the result.
    probe() {
        local name=$1 fn=$2 c
        pn=$((pn + 1)); c=probe$pn-$suffix
        step "extra probe $pn: $name   (container $c)"
        "$fn" "$c"; local r=$?
        if [ $r = 0 ] && [ -z "$(calls_of "$c")" ]; then
            note "the runtime under test was never called for $c"; r=1
        fi
        if [ $r = 0 ]; then
            ok "$name"; probes_passed+=("$name")
        elif [ $r = 2 ]; then
            info "SKIPPED: $name"; probes_skipped+=("$name")
        else
            printf '    FAILED: %s\n' "$name"; probes_failed+=("$name")
            note "runtime calls for $c:"
            calls_of "$c" | indent
        fi
        remove "$c"
    }
    in_pty() { timeout -k 5 "$T" script -qec "$(printf '%q ' "$@")" /dev/null </dev/null; }
    ctr_cmd=(ctr --address "$sock" --namespace "$ns")

    p_exit_code() {
        ctr_ run --rm "${pflags[@]}" "$image" "$1" sh -c 'exit 3' </dev/null 2>&1 | indent
        local rc=${PIPESTATUS[0]}; note "ctr run exit status: $rc (want 3)"; [ "$rc" = 3 ]
    }
    p_stdin() {
        # (a line, not EOF: ctr does not close the container's stdin when its own ends)
        local out; out=$(printf 'from stdin\n' | ctr_ run --rm "${pflags[@]}" "$image" "$1" sh -c 'read l; echo "got: $l"' 2>&1)
        printf '%s\n' "$out" | indent; [ "$out" = "got: from stdin" ]
    }
    p_env_cwd() {
        local out; out=$(ctr_ run --rm "${pflags[@]}" --env FOO=bar --cwd /tmp "$image" "$1" sh -c 'echo "$FOO $(pwd) $(id -u)"' </dev/null 2>&1)
        printf '%s\n' "$out" | indent; [ "$out" = "bar /tmp 0" ]
    }
    p_tty() {
        local out; out=$(in_pty "${ctr_cmd[@]}" run -t --rm "${pflags[@]}" "$image" "$1" sh -c 'test -t 0 && test -t 1 && echo TTY-OK $(ls -l /proc/self/fd/0 | sed "s/.*-> //")' 2>&1 | tr -d '\r')
        printf '%s\n' "$out" | indent; printf '%s' "$out" | grep -q 'TTY-OK /dev/pts/'
    }
    p_exec_tty() {
        start_detached "$1" -- sleep 1000 || return 1
        local out; out=$(in_pty "${ctr_cmd[@]}" tasks exec -t --exec-id t --fifo-dir "$fifo_dir" "$1" sh -c 'test -t 1 && echo TTY-OK' 2>&1 | tr -d '\r')
        printf '%s\n' "$out" | indent; printf '%s' "$out" | grep -q TTY-OK
    }
    p_exec_exit_code() {
        start_detached "$1" -- sleep 1000 || return 1
        ctr_ tasks exec --exec-id e --fifo-dir "$fifo_dir" "$1" sh -c 'exit 7' </dev/null 2>&1 | indent
        local rc=${PIPESTATUS[0]}; note "ctr task exec exit status: $rc (want 7)"; [ "$rc" = 7 ]
    }
    p_kill_all() {
        start_detached "$1" -- sh -c 'sleep 1000 & sleep 1001 & wait' || return 1
        local cg; cg=$(find /sys/fs/cgroup/pids/"$ns/$1" -maxdepth 0 2>/dev/null)
        note "processes before: $(cat "$cg/cgroup.procs" 2>/dev/null | tr '\n' ' ')"
        ctr_ tasks kill -a -s KILL "$1" 2>&1 | indent
        [ "${PIPESTATUS[0]}" = 0 ] || return 1
        wait_until "$T" "$1 STOPPED" sh -c "timeout 5 ctr --address '$sock' --namespace '$ns' tasks ls | awk '\$1 == \"$1\" && \$3 == \"STOPPED\"' | grep -q ." || return 1
        note "processes after: '$(cat "$cg/cgroup.procs" 2>/dev/null | tr '\n' ' ')'"
        [ -z "$(cat "$cg/cgroup.procs" 2>/dev/null)" ]
    }
    p_pause_resume() {
        start_detached "$1" -- sleep 1000 || return 1
        ctr_ tasks pause "$1" 2>&1 | indent; [ "${PIPESTATUS[0]}" = 0 ] || return 1
        note "after pause: $(ctr_ tasks ls | awk -v c="$1" '$1 == c') freezer.state=$(cat /sys/fs/cgroup/freezer/"$ns/$1"/freezer.state 2>/dev/null)"
        ctr_ tasks ls | awk -v c="$1" '$1 == c && $3 == "PAUSED"' | grep -q . || return 1
        ctr_ tasks resume "$1" 2>&1 | indent; [ "${PIPESTATUS[0]}" = 0 ] || return 1
        note "after resume: $(ctr_ tasks ls | awk -v c="$1" '$1 == c') freezer.state=$(cat /sys/fs/cgroup/freezer/"$ns/$1"/freezer.state 2>/dev/null)"
        ctr_ tasks ls | awk -v c="$1" '$1 == c && $3 == "RUNNING"' | grep -q .
    }
    p_limits() {
        start_detached "$1" --memory-limit 67108864 --cpus 0.5 -- sleep 1000 || return 1
        local mem quota period
        mem=$(cat /sys/fs/cgroup/memory/"$ns/$1"/memory.limit_in_bytes 2>/dev/null)
        quota=$(cat /sys/fs/cgroup/cpu/"$ns/$1"/cpu.cfs_quota_us 2>/dev/null)
        period=$(cat /sys/fs/cgroup/cpu/"$ns/$1"/cpu.cfs_period_us 2>/dev/null)
        note "memory.limit_in_bytes=$mem (want 67108864) cpu.cfs_quota_us=$quota (want 50000) cpu.cfs_period_us=$period (want 100000)"
        [ "$mem" = 67108864 ] && [ "$quota" = 50000 ] && [ "$period" = 100000 ]
    }
    p_metrics() {
        start_detached "$1" --memory-limit 67108864 -- sleep 1000 || return 1
        local out; out=$(ctr_ tasks metrics "$1" 2>&1); local rc=$?
        printf '%s\n' "$out" | head -12 | indent; [ $rc = 0 ] && printf '%s' "$out" | grep -q 67108864
    }
    p_seccomp() {
        start_detached "$1" --seccomp -- sleep 1000 || return 1
        local s; s=$(awk '/^Seccomp:/ { print $2 }' "/proc/$ppid_/status")
        note "Seccomp: $s (want 2)"; [ "$s" = 2 ] || return 1
        local out; out=$(ctr_ tasks exec --exec-id s --fifo-dir "$fifo_dir" "$1" sh -c 'ls / >/dev/null && echo shell-ok' </dev/null 2>&1)
        printf '%s\n' "$out" | indent; [ "$out" = shell-ok ]
    }
    # Compare a process's capability sets and NoNewPrivs with a spec process object:
    # check_process_security STATUS_FILE PROCESS_JSON_FILE (the sets the spec lists, within
    # the host's bounding set; absent sets are empty).
    check_process_security() {
        python3 - "$1" "$2" /proc/self/status <<'PY'
import json, sys
names = ("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
         "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
         "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
         "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
         "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
         "CHECKPOINT_RESTORE").split()
def status(path):
    return dict(l.split(":", 1) for l in open(path).read().splitlines() if ":" in l)
got, host = status(sys.argv[1]), status(sys.argv[3])
proc = json.load(open(sys.argv[2]))
proc = proc.get("process", proc)
host_bnd = int(host["CapBnd"], 16)
caps = proc.get("capabilities") or {}
bad = 0
for key, field in (("bounding", "CapBnd"), ("effective", "CapEff"), ("permitted", "CapPrm"),
                   ("inheritable", "CapInh"), ("ambient", "CapAmb")):
    want = 0
    for n in caps.get(key) or []:
        want |= 1 << names.index(n[4:])
    want &= host_bnd
    have = int(got[field], 16)
    extra = [names[i] for i in range(64) if (have & ~want) >> i & 1]
    missing = [names[i] for i in range(64) if (want & ~have) >> i & 1]
    ok = have == want
    bad += not ok
    print(f"{field}: {have:016x} want {want:016x} {'ok' if ok else 'MISMATCH'}"
          + (f"; extra: {' '.join(extra)}" if extra else "")
          + (f"; missing: {' '.join(missing)}" if missing else ""))
nnp = got.get("NoNewPrivs", "?").strip()
want_nnp = "1" if proc.get("noNewPrivileges") else "0"
bad += nnp != want_nnp
print(f"NoNewPrivs: {nnp} want {want_nnp} {'ok' if nnp == want_nnp else 'MISMATCH'}")
sys.exit(1 if bad else 0)
PY
    }
    p_default_security() {
        start_detached "$1" -- sleep 1000 || return 1
        note "init (pid $ppid_) against the spec's process:"
        check_process_security "/proc/$ppid_/status" "$tmp/trace/config-$1.json" | indent
        local r=${PIPESTATUS[0]}
        # An exec'd process against the process.json the shim passed.
        ctr_ tasks exec --exec-id s --fifo-dir "$fifo_dir" "$1" cat /proc/self/status </dev/null >"$tmp/exec-status" 2>&1 || r=1
        awk '/process.json:/ { sub(/^ *process.json: /, ""); last = $0 } END { print last }' "$tmp/trace/calls.log" >"$tmp/exec-process.json"
        note "exec'd process against its process.json:"
        check_process_security "$tmp/exec-status" "$tmp/exec-process.json" | indent
        [ "${PIPESTATUS[0]}" = 0 ] || r=1
        return $r
    }
    p_caps() {
        start_detached "$1" --cap-drop CAP_CHOWN --cap-add CAP_SYS_ADMIN -- sleep 1000 || return 1
        check_process_security "/proc/$ppid_/status" "$tmp/trace/config-$1.json" | indent
        [ "${PIPESTATUS[0]}" = 0 ]
    }
    p_read_only() {
        local out; out=$(ctr_ run --rm "${pflags[@]}" --read-only "$image" "$1" sh -c 'echo x 2>/dev/null >/f && echo WROTE || echo READ-ONLY' </dev/null 2>&1)
        printf '%s\n' "$out" | indent; [ "$out" = READ-ONLY ]
    }
    p_privileged() {
        local out want; want=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
        out=$(ctr_ run --rm "${pflags[@]}" --privileged "$image" "$1" sh -c 'grep CapEff /proc/self/status; echo "$(ls /dev | wc -l) entries in /dev"' </dev/null 2>&1)
        printf '%s\n' "$out" | indent; printf '%s' "$out" | grep -q "CapEff:.*$want"
    }
    p_no_pivot() {
        local out; out=$(ctr_ run --rm "${pflags[@]}" --no-pivot "$image" "$1" echo no-pivot-ok </dev/null 2>&1)
        printf '%s\n' "$out" | indent; [ "$out" = no-pivot-ok ]
    }
    p_bind_mount() {
        mkdir -p "$tmp/share"; echo shared-ok >"$tmp/share/file"
        local out; out=$(ctr_ run --rm "${pflags[@]}" --mount "type=bind,src=$tmp/share,dst=/share,options=rbind:ro" "$image" "$1" sh -c 'cat /share/file; echo x 2>/dev/null >/share/y && echo WROTE' </dev/null 2>&1)
        printf '%s\n' "$out" | indent; [ "$out" = shared-ok ]
    }
    p_net_host() {
        start_detached "$1" --net-host -- sleep 1000 || return 1
        note "net: $(readlink /proc/$ppid_/ns/net) host $(readlink /proc/$$/ns/net)"
        [ "$(readlink /proc/$ppid_/ns/net)" = "$(readlink /proc/$$/ns/net)" ]
    }
    p_with_ns() {
        local other=$1-peer
        start_detached "$other" -- sleep 1000 || { remove "$other"; return 1; }
        local peer=$ppid_ r=0
        start_detached "$1" --with-ns "network:/proc/$peer/ns/net" -- sleep 1000 || r=1
        if [ $r = 0 ]; then
            note "net: $(readlink /proc/$ppid_/ns/net), peer $(readlink /proc/$peer/ns/net)"
            [ "$(readlink /proc/$ppid_/ns/net)" = "$(readlink /proc/$peer/ns/net)" ] || r=1
        fi
        [ $r = 0 ] || { note "runtime calls for $other:"; calls_of "$other" | indent; }
        remove "$other"; return $r
    }
    p_userns() {
        start_detached "$1" --uidmap 0:100000:65536 --gidmap 0:100000:65536 -- sleep 1000 || return 1
        note "uid_map: $(cat /proc/$ppid_/uid_map | tr -s ' ') gid_map: $(cat /proc/$ppid_/gid_map | tr -s ' ') user ns: $(readlink /proc/$ppid_/ns/user) (host $(readlink /proc/$$/ns/user))"
        grep -Eq '^ *0 +100000 +65536' "/proc/$ppid_/uid_map" || return 1
        local out; out=$(ctr_ tasks exec --exec-id u --fifo-dir "$fifo_dir" "$1" id </dev/null 2>&1)
        printf '%s\n' "$out" | indent; printf '%s' "$out" | grep -q 'uid=0'
    }
    p_checkpoint() {
        if ! criu check >/dev/null 2>&1; then
            # containerd pauses the task, runs `checkpoint --image-path I --work-path W
            # --leave-running ID`, then resumes it. With criu broken, the runtime should get
            # as far as criu and report criu's failure (as runc does); then the probe is
            # skipped. Failing earlier, for another reason, is an incompatibility.
            note "criu check fails on this machine: $(criu check 2>&1 | tail -1)"
            start_detached "$1" -- sleep 1000 || return 1
            local out; out=$(ctr_ tasks checkpoint "$1" 2>&1)
            printf '%s\n' "$out" | indent
            # (containerd itself appends "path= <bundle>/criu-dump.log" to any error)
            if printf '%s' "$out" | sed 's#path= [^ :]*criu-dump\.log##' | grep -qi 'criu'; then
                note "the runtime reached criu, which failed: skipped"; return 2
            fi
            note "the runtime failed before reaching criu"; return 1
        fi
        start_detached "$1" -- sleep 1000 || return 1
        local out; out=$(ctr_ tasks checkpoint "$1" 2>&1); local rc=$?
        printf '%s\n' "$out" | indent; [ $rc = 0 ]
    }

    # ------------------------------------------------------------ argv surface
    # Every command line containerd 1.6's runc shim can build through go-runc (create with
    # each option, exec, kill, delete, ps, pause/resume, update, checkpoint/restore with each
    # option, events, the global flags), run against a container that does not exist: a
    # runtime that understands the command line answers "does not exist" (or similar); one
    # that does not rejects it at parse time. Parse-time rejections count as failures.
    step "extra: the command lines containerd's shim can build (go-runc), on a missing container"
    av_root=$tmp/argv-root av_b=$tmp/argv-bundle av_id=argv-missing
    mkdir -p "$av_root"
    G=(--root "$av_root" --log "$tmp/argv.log" --log-format json)
    argv_rejected=()
    argv_case() { # argv_case WHY ARGS...
        local why=$1; shift
        local out rc
        out=$(printf '{}' | timeout -k 2 10 "$runtime" "$@" 2>&1); rc=$?
        out=$(printf '%s' "$out" | tr '\n' ' ' | sed -E 's/ +/ /g; s#'"$tmp"'#<tmp>#g' | cut -c1-150)
        local shown; shown=$(printf '%q ' "$@" | sed -E "s#--root [^ ]+ --log [^ ]+ --log-format json#[G]#; s#$tmp#<tmp>#g")
        if printf '%s' "$out" | grep -Eqi 'unexpected argument|unrecognized subcommand|flag provided but not defined|incorrect usage|invalid value|unknown (command|flag)|No help topic|unexpected value|wasn.t expected'; then
            printf '    REJECTED  %s\n              (%s) exit %s: %s\n' "$shown" "$why" "$rc" "$out"
            argv_rejected+=("$shown")
        else
            printf '    accepted  %s\n              exit %s: %s\n' "$shown" "$rc" "$out"
        fi
    }
    argv_case "every create"              "${G[@]}" create --bundle "$av_b" --pid-file "$tmp/p.pid" "$av_id"
    argv_case "ctr run -t"                "${G[@]}" create --bundle "$av_b" --pid-file "$tmp/p.pid" --console-socket "$tmp/c.sock" "$av_id"
    argv_case "runc option NoPivotRoot / ctr run --no-pivot" "${G[@]}" create --bundle "$av_b" --pid-file "$tmp/p.pid" --no-pivot "$av_id"
    argv_case "runc option NoNewKeyring"  "${G[@]}" create --bundle "$av_b" --pid-file "$tmp/p.pid" --no-new-keyring "$av_id"
    argv_case "go-runc CreateOpts.ExtraFiles" "${G[@]}" create --bundle "$av_b" --pid-file "$tmp/p.pid" --preserve-fds 1 "$av_id"
    argv_case "go-runc CreateOpts.Detach (run)" "${G[@]}" run --bundle "$av_b" --pid-file "$tmp/p.pid" --detach "$av_id"
    argv_case "task start"                "${G[@]}" start "$av_id"
    argv_case "task state"                "${G[@]}" state "$av_id"
    argv_case "task kill"                 "${G[@]}" kill "$av_id" 9
    argv_case "task kill -a"              "${G[@]}" kill --all "$av_id" 9
    argv_case "task delete"               "${G[@]}" delete "$av_id"
    argv_case "shim cleanup"              "${G[@]}" delete --force "$av_id"
    argv_case "task exec"                 "${G[@]}" exec --process "$tmp/none.json" --detach --pid-file "$tmp/p.pid" "$av_id"
    argv_case "task exec -t"              "${G[@]}" exec --process "$tmp/none.json" --console-socket "$tmp/c.sock" --detach --pid-file "$tmp/p.pid" "$av_id"
    argv_case "task ps"                   "${G[@]}" ps --format json "$av_id"
    argv_case "go-runc Top"               "${G[@]}" ps --format table "$av_id" -ef
    argv_case "go-runc List"              "${G[@]}" list --format=json
    argv_case "task pause"                "${G[@]}" pause "$av_id"
    argv_case "task resume"               "${G[@]}" resume "$av_id"
    argv_case "task update (resources JSON on stdin)" "${G[@]}" update --resources - "$av_id"
    argv_case "task checkpoint"           "${G[@]}" checkpoint --image-path "$tmp/img" --work-path "$tmp/work" --leave-running "$av_id"
    argv_case "checkpoint --exit"         "${G[@]}" checkpoint --image-path "$tmp/img" --work-path "$tmp/work" "$av_id"
    argv_case "CheckpointOptions.OpenTcp / ExternalUnixSockets / Terminal / FileLocks" \
                                          "${G[@]}" checkpoint --image-path "$tmp/img" --work-path "$tmp/work" --tcp-established --ext-unix-sk --shell-job --file-locks --leave-running "$av_id"
    argv_case "CheckpointOptions.EmptyNamespaces" "${G[@]}" checkpoint --image-path "$tmp/img" --work-path "$tmp/work" --empty-ns network "$av_id"
    argv_case "go-runc ParentPath / PreDump" "${G[@]}" checkpoint --image-path "$tmp/img" --work-path "$tmp/work" --parent-path "$tmp/parent" --pre-dump "$av_id"
    argv_case "go-runc page server / cgroups mode" "${G[@]}" checkpoint --image-path "$tmp/img" --page-server 127.0.0.1:9 --manage-cgroups-mode soft "$av_id"
    argv_case "restore (ctr run/create --checkpoint): Detach, PidFile, NoSubreaper (one dash)" \
                                          "${G[@]}" restore --image-path "$tmp/img" --work-path "$tmp/work" --detach --pid-file "$tmp/p.pid" -no-subreaper --bundle "$av_b" "$av_id"
    argv_case "restore with NoPivot"      "${G[@]}" restore --image-path "$tmp/img" --work-path "$tmp/work" --detach --pid-file "$tmp/p.pid" --no-pivot -no-subreaper --bundle "$av_b" "$av_id"
    argv_case "restore -t"                "${G[@]}" restore --image-path "$tmp/img" --detach --pid-file "$tmp/p.pid" --console-socket "$tmp/c.sock" -no-subreaper --bundle "$av_b" "$av_id"
    argv_case "go-runc Stats"             "${G[@]}" events --stats "$av_id"
    argv_case "go-runc Events"            "${G[@]}" events --interval=5s "$av_id"
    argv_case "runc option CriuPath (a global flag)" --criu /usr/sbin/criu "${G[@]}" checkpoint --image-path "$tmp/img" --leave-running "$av_id"
    argv_case "go-runc Debug"             --debug "${G[@]}" state "$av_id"
    argv_case "go-runc Rootless (explicit false)" --rootless=false "${G[@]}" state "$av_id"
    argv_case "runc option SystemdCgroup (refusal expected, as documented)" "${G[@]}" --systemd-cgroup state "$av_id"
    out=$("$runtime" --version 2>&1)
    info "--version (go-runc's Version() wants 'X version V' / 'commit: C' / 'spec: S' lines; containerd 1.6's shim does not call it):"
    printf '%s\n' "$out" | indent
    if [ ${#argv_rejected[@]} = 0 ]; then ok "every command line parsed"; else
        printf '    FAILED: %s command line(s) rejected at parse time\n' "${#argv_rejected[@]}"
        failures=$((failures + ${#argv_rejected[@]}))
    fi
    rm -rf "$av_root"

    probe "exit status of the init reaches ctr (sh -c 'exit 3')" p_exit_code
    probe "stdin is passed to the container (printf | ctr run ... cat)" p_stdin
    probe "--env FOO=bar --cwd /tmp" p_env_cwd
    probe "ctr run -t (console socket, pty)" p_tty
    probe "ctr task exec -t (console socket for exec)" p_exec_tty
    probe "exit status of an exec (sh -c 'exit 7')" p_exec_exit_code
    probe "ctr task kill -a (kill --all)" p_kill_all
    probe "the spec's capabilities and noNewPrivileges (ctr defaults), init and exec" p_default_security
    probe "ctr task pause / resume" p_pause_resume
    probe "--memory-limit 64M --cpus 0.5 reach the cgroup" p_limits
    probe "ctr task metrics" p_metrics
    probe "--seccomp (containerd's default profile)" p_seccomp
    probe "--cap-drop CAP_CHOWN --cap-add CAP_SYS_ADMIN" p_caps
    probe "--read-only rootfs" p_read_only
    probe "--privileged" p_privileged
    probe "--no-pivot" p_no_pivot
    probe "--mount type=bind,...,options=rbind:ro" p_bind_mount
    probe "--net-host (no network namespace)" p_net_host
    probe "--with-ns network:/proc/<pid>/ns/net (join a namespace)" p_with_ns
    probe "--uidmap/--gidmap (user namespace)" p_userns
    probe "ctr task checkpoint (criu)" p_checkpoint

    step "extra probes: ${#probes_passed[@]} passed, ${#probes_failed[@]} failed, ${#probes_skipped[@]} skipped"
    for p in "${probes_passed[@]}"; do info "pass: $p"; done
    for p in "${probes_skipped[@]}"; do info "skip: $p"; done
    for p in "${probes_failed[@]}"; do info "FAIL: $p"; done
    [ ${#probes_failed[@]} = 0 ] || failures=$((failures + ${#probes_failed[@]}))
    no_probe_shims() { [ -z "$(our_shims)" ]; }
    if wait_until "$T" "probe shims to exit" no_probe_shims; then ok "no shim left by the probes"
    else fail "shims left by the probes: $(our_shims | tr '\n' ' ')"; fi
    left=$(find "$runc_root" /run/containerd/runc/"$ns" -mindepth 2 2>/dev/null | tr '\n' ' ')
    [ -z "$left" ] && ok "no runtime state left by the probes" || fail "runtime state left by the probes: $left"
    left=$(find /sys/fs/cgroup/*/"$ns" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | tr '\n' ' ')
    [ -z "$left" ] && ok "no container cgroup left by the probes" || fail "cgroups left by the probes: $left"
    left=$(our_mounts | tr '\n' ' ')
    [ -z "$left" ] && ok "no mounts left by the probes" || fail "mounts left by the probes: $left"
fi

if [ "$trace" = 1 ]; then step "trace"; print_trace; fi
exit 0
