#!/usr/bin/env bash
# Memory of idle berth-shims: starts N shims (default 100), each owning a `sleep`
# container made by the built-in runtime library, waits until all run, then reads every
# shim's /proc/<pid>/smaps_rollup and prints mean and max of
#   private = Private_Clean + Private_Dirty   (memory no other process shares)
#   pss     = Pss                             (shared pages split among their users)
#   rss     = Rss
# Finally deletes every container through its shim's socket (which also exercises the
# protocol), and cleans up whatever is left in any case (processes, cgroups, files).
#
# Usage: runtime-shim/scripts/shim-memory.sh [-n N] [--shim PATH] [--runc PATH] [--json]
# Must run as root. Needs python3. No downloads: the rootfs is the host's own `sleep`
# and its shared libraries.
set -euo pipefail

prog=$(basename "$0")
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)

count=100
shim=""
runc=""
json=0

usage() {
    cat <<USAGE
usage: $prog [-n N] [--shim PATH] [--runc PATH] [--json]

Starts N berth-shims (default 100) with a \`sleep\` container each, measures each idle
shim's private memory (Private_Clean + Private_Dirty), PSS and RSS from
/proc/<pid>/smaps_rollup, prints mean and max, and removes everything again.

  -n N          number of shims (default 100)
  --shim PATH   berth-shim binary (default: cargo build --release, target/release)
  --runc PATH   berth-runc binary, used for \`spec\` and cleanup (default: same)
  --json        one JSON object instead of the table
  -h, --help    this help
USAGE
}

die() { echo "$prog: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        -n) need_arg "$@"; count=$2; shift 2 ;;
        --shim) need_arg "$@"; shim=$2; shift 2 ;;
        --runc) need_arg "$@"; runc=$2; shift 2 ;;
        --json) json=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ $count =~ ^[0-9]+$ && $count -ge 1 ]] || die "-n wants an integer >= 1, got '$count'"
[[ $EUID -eq 0 ]] || die "must run as root (the shims create containers)"
command -v python3 >/dev/null || die "python3 is required"

if [[ -z $shim || -z $runc ]]; then
    note "building berth-shim and berth-runc (cargo build --release) in $repo_root"
    (cd "$repo_root" && cargo build --release -p berth-shim -p berth-runc >&2) \
        || die "cargo build failed"
    target=$(cd "$repo_root" && cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    [[ -n $shim ]] || shim="$target/release/berth-shim"
    [[ -n $runc ]] || runc="$target/release/berth-runc"
fi
for b in "$shim" "$runc"; do [[ -x $b ]] || die "not an executable: $b"; done
shim=$(realpath "$shim")
runc=$(realpath "$runc")

tmp=$(mktemp -d /tmp/berth-shim-mem.XXXXXX)
root="$tmp/runtime-root"
# Cgroups under /berth-shim-mem/<this shell's pid>: two runs cannot collide, and cleanup
# knows exactly what it made.
cg_base="/berth-shim-mem/$$"
ids=()

cleanup() {
    local rc=$? id pidf d
    trap - EXIT INT TERM
    set +e
    for id in "${ids[@]}"; do
        pidf="$tmp/shims/$id/shim.pid"
        [[ -f $pidf ]] && kill -KILL "$(cat "$pidf")" 2>/dev/null
    done
    for id in $("$runc" --root "$root" list -q 2>/dev/null); do
        "$runc" --root "$root" delete --force "$id" >/dev/null 2>&1 \
            || note "cleanup: could not delete container $id"
    done
    for d in /sys/fs/cgroup"$cg_base" /sys/fs/cgroup/*"$cg_base"; do
        [[ -d $d ]] || continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
        [[ -d $d ]] && note "cleanup: could not remove cgroup $d"
        rmdir "$(dirname "$d")" 2>/dev/null
    done
    rm -rf --one-file-system "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- bundle: rootfs from the host's own `sleep` -------------------------------------
rootfs="$tmp/rootfs"
mkdir -p "$rootfs"/{bin,proc,dev,sys,tmp}
sleep_bin=$(command -v sleep) || die "no sleep on this host"
cp -L "$sleep_bin" "$rootfs/bin/sleep"
while read -r lib; do
    [[ -n $lib ]] || continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done < <(ldd "$sleep_bin" 2>/dev/null \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' || true)
mkdir -p "$tmp/spec" "$tmp/shims" "$root"
"$runc" spec --bundle "$tmp/spec" || die "berth-runc spec failed"

# --- start the shims ----------------------------------------------------------------
note "starting $count shims"
for i in $(seq 1 "$count"); do
    id="shimmem-$$-$i"
    ids+=("$id")
    bundle="$tmp/bundles/$id"
    mkdir -p "$bundle"
    python3 - "$tmp/spec/config.json" "$bundle/config.json" "$rootfs" "$cg_base/$id" <<'PY'
import json, sys
src, out, rootfs, cgroups_path = sys.argv[1:]
with open(src) as f:
    c = json.load(f)
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "100000"]
c["root"] = {"path": rootfs, "readonly": True}
c.setdefault("linux", {})["cgroupsPath"] = cgroups_path
with open(out, "w") as f:
    json.dump(c, f)
PY
    "$shim" --id "$id" --bundle "$bundle" --state-dir "$tmp/shims/$id" \
        --runtime-root "$root" --log "$tmp/shims/$id/container.log" \
        </dev/null >/dev/null 2>&1 &
done

# --- wait, measure, delete through the sockets -------------------------------------
python3 - "$tmp/shims" "$json" "${ids[@]}" <<'PY'
import json, os, socket, statistics, sys, time

shims, as_json, ids = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
EVENTS = ("created", "started", "exited", "oom", "failed")

def ask(state_dir, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(30)
    try:
        s.connect(os.path.join(state_dir, "shim.sock"))
        s.send(json.dumps(req).encode())
        while True:
            data = s.recv(65536)
            if not data:
                raise OSError("shim closed the socket")
            msg = json.loads(data)
            if msg["kind"] not in EVENTS:
                return msg
    finally:
        s.close()

deadline = time.time() + 120
pending = set(ids)
while pending:
    for i in list(pending):
        try:
            if ask(os.path.join(shims, i), {"op": "state"})["status"] == "running":
                pending.discard(i)
        except (OSError, ValueError, KeyError):
            pass
    if time.time() > deadline:
        sys.exit(f"shim-memory: {len(pending)} shims never reported a running container")
    time.sleep(0.1)
time.sleep(2)  # let them settle into their idle poll

def rollup(pid):
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit():
                vals[parts[0].rstrip(":")] = int(parts[1])  # kB
    return vals

rows = []
for i in ids:
    pid = int(open(os.path.join(shims, i, "shim.pid")).read())
    v = rollup(pid)
    rows.append((v["Private_Clean"] + v["Private_Dirty"], v["Pss"], v["Rss"]))

res = {"shims": len(rows)}
for k, name in enumerate(("private", "pss", "rss")):
    xs = [r[k] for r in rows]
    res[name + "_kib_mean"] = round(statistics.mean(xs), 1)
    res[name + "_kib_max"] = max(xs)

failed = 0
for i in ids:
    try:
        if ask(os.path.join(shims, i), {"op": "delete", "force": True})["kind"] != "ok":
            failed += 1
    except (OSError, ValueError, KeyError):
        failed += 1
res["delete_failures"] = failed

if as_json:
    print(json.dumps(res))
else:
    print(f"{len(rows)} idle berth-shims, per shim (KiB):")
    print(f"  {'':8} {'mean':>8} {'max':>8}")
    for name in ("private", "pss", "rss"):
        print(f"  {name:8} {res[name + '_kib_mean']:8.1f} {res[name + '_kib_max']:8d}")
    print("  private = Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup")
    if failed:
        print(f"  {failed} deletes through the shim socket failed (cleanup removes them)")
PY
# The shims exit after their delete; reap the background jobs.
wait
