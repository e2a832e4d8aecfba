#!/usr/bin/env bash
# Side-by-side lifecycle benchmark: berth-runc vs runc (and crun if it works here).
#
# Times, for a container whose process is `true`:
#   * "4 cmds": R create --pid-file P ID ; R start ID ; wait for the init to exit ; R delete ID
#   * "run":    R run ID   (create + start + wait + delete inside one runtime process)
# and, for a container whose process is `sleep` (as engines stop running ones):
#   * "run -d + delete -f": R run -d ID ; R delete --force ID   (kill a running container)
# Runs are interleaved (berth, runc, [crun], then the reverse order on the next
# iteration), so machine noise hits every runtime alike.
#
# The measuring loop is ONE python3 process: it spawns the runtime commands with
# subprocess (the same spawn cost for every runtime), waits for the container's init
# with pidfd_open + poll (no sleeps, so nothing is quantized), and times each
# iteration with time.perf_counter_ns.
#
# Usage: benches/lifecycle.sh [-n RUNS] [--warmup N] [--berth PATH] [--runc PATH]
#                             [--crun PATH] [--json]
# Must run as root. Needs python3 (>= 3.9) and Linux >= 5.3 (pidfd_open). No downloads:
# the bundle's rootfs is built from the host's own `true` and its shared libraries.
set -euo pipefail

prog=$(basename "$0")
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)

runs=200
warmup=5
berth=""
runc_bin=""
crun_bin=""
json=0

usage() {
    cat <<EOF
usage: $prog [-n RUNS] [--warmup N] [--berth PATH] [--runc PATH] [--crun PATH] [--json]

Times create -> start -> wait -> delete (and the one-shot \`run\`) of a \`true\`
container with berth-runc and runc, interleaved, and prints median and p90 per
runtime plus the ratio berth-runc/runc. crun is measured too if it is installed and
works on this machine (otherwise it is skipped with the reason).

  -n, --runs RUNS   timed iterations per runtime and figure (default 200)
      --warmup N    untimed iterations first (default 5)
      --berth PATH  berth-runc binary (default: build it with
                    \`cargo build --release -p berth-runc\` in $repo_root)
      --runc PATH   runc binary (default: runc on PATH, else /usr/sbin/runc)
      --crun PATH   crun binary (default: crun on PATH, if any)
      --json        print one JSON object instead of the table
  -h, --help        this help
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }

need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        -n|--runs) need_arg "$@"; runs=$2; shift 2 ;;
        --warmup) need_arg "$@"; warmup=$2; shift 2 ;;
        --berth) need_arg "$@"; berth=$2; shift 2 ;;
        --runc) need_arg "$@"; runc_bin=$2; shift 2 ;;
        --crun) need_arg "$@"; crun_bin=$2; shift 2 ;;
        --json) json=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ $runs =~ ^[0-9]+$ && $runs -ge 2 ]] || die "-n wants an integer >= 2, got '$runs'"
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup wants an integer >= 0, got '$warmup'"
[[ $EUID -eq 0 ]] || die "must run as root (the runtimes create namespaces and cgroups)"
command -v python3 >/dev/null || die "python3 is required (it runs the measuring loop)"
python3 -c 'import os, sys; sys.exit(0 if hasattr(os, "pidfd_open") else 1)' \
    || die "python3 >= 3.9 with os.pidfd_open is required"

# --- runtimes ---------------------------------------------------------------------
if [[ -z $berth ]]; then
    note "building berth-runc (cargo build --release -p berth-runc) in $repo_root"
    (cd "$repo_root" && cargo build --release -p berth-runc >&2) \
        || die "cargo build of berth-runc failed"
    berth="$repo_root/target/release/berth-runc"
fi
if [[ -z $runc_bin ]]; then
    runc_bin=$(command -v runc || true)
    [[ -n $runc_bin ]] || runc_bin=/usr/sbin/runc
fi
if [[ -z $crun_bin ]]; then
    crun_bin=$(command -v crun || true)
fi
for b in "$berth" "$runc_bin" ${crun_bin:+"$crun_bin"}; do
    [[ -x $b ]] || die "not an executable: $b"
done
berth=$(realpath "$berth")
runc_bin=$(realpath "$runc_bin")
[[ -z $crun_bin ]] || crun_bin=$(realpath "$crun_bin")

# --- temp dir and cleanup ---------------------------------------------------------
tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
# Cgroups live under /berth-bench/<this shell's pid>/<runtime>, so two benchmark
# runs at once cannot collide, and cleanup knows exactly what it created.
cg_base="/berth-bench/$$"
rt_names=()
rt_paths=()
rt_roots=()

cleanup() {
    local rc=$? i id ids d
    trap - EXIT INT TERM
    set +e
    for i in "${!rt_names[@]}"; do
        [[ -d ${rt_roots[$i]} ]] || continue
        ids=$("${rt_paths[$i]}" --root "${rt_roots[$i]}" list -q 2>/dev/null) \
            || ids=$(ls -A "${rt_roots[$i]}" 2>/dev/null)
        for id in $ids; do
            note "cleanup: ${rt_names[$i]} delete --force $id"
            "${rt_paths[$i]}" --root "${rt_roots[$i]}" delete --force "$id" >/dev/null 2>&1 \
                || note "cleanup: could not delete ${rt_names[$i]} container $id"
        done
    done
    for d in /sys/fs/cgroup"$cg_base" /sys/fs/cgroup/*"$cg_base"; do
        [[ -d $d ]] || continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
        [[ -d $d ]] && note "cleanup: could not remove cgroup $d"
        rmdir "$(dirname "$d")" 2>/dev/null # .../berth-bench, if no other run uses it
    done
    rm -rf --one-file-system "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- bundle: rootfs from the host's own `true` and `sleep` -----------------------
rootfs="$tmp/rootfs"
mkdir -p "$rootfs"/{bin,proc,dev,sys,tmp}
for prog_name in true sleep; do
    host_bin=""
    for c in "/bin/$prog_name" "/usr/bin/$prog_name"; do
        if [[ -x $c ]]; then host_bin=$c; break; fi
    done
    [[ -n $host_bin ]] || die "no /bin/$prog_name or /usr/bin/$prog_name on this host"
    cp -L "$host_bin" "$rootfs/bin/$prog_name"
    # Shared libraries and the dynamic loader, at the paths the binary asks for.
    # ldd lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
    #            "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)".
    while read -r lib; do
        [[ -n $lib ]] || continue
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done < <(ldd "$host_bin" 2>/dev/null \
        | awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' || true)
done

# One config per runtime, identical but for cgroupsPath; all share the one rootfs.
spec_dir="$tmp/spec"
mkdir -p "$spec_dir"
"$berth" spec --bundle "$spec_dir" || die "berth-runc spec failed"
make_bundle() { # name args-json -> prints bundle dir
    local dir="$tmp/bundle-$1"
    mkdir -p "$dir"
    python3 - "$spec_dir/config.json" "$dir/config.json" "$rootfs" "$cg_base/$1" "$2" <<'PY'
import json, sys
src, out, rootfs, cgroups_path, args = sys.argv[1:]
with open(src) as f:
    c = json.load(f)
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(args)
c["root"] = {"path": rootfs, "readonly": True}
c.setdefault("linux", {})["cgroupsPath"] = cgroups_path
with open(out, "w") as f:
    json.dump(c, f, indent=2)
PY
    echo "$dir"
}

add_runtime() { # name path
    rt_names+=("$1")
    rt_paths+=("$2")
    rt_roots+=("$tmp/root-$1")
    mkdir -p "$tmp/root-$1"
}
add_runtime berth-runc "$berth"
add_runtime runc "$runc_bin"
[[ -z $crun_bin ]] || add_runtime crun "$crun_bin"

py_args=("$runs" "$warmup" "$json" "$tmp" "${crun_bin:+present}")
for i in "${!rt_names[@]}"; do
    bundle=$(make_bundle "${rt_names[$i]}" '["true"]')
    sleeper=$(make_bundle "${rt_names[$i]}-sleep" '["sleep", "1000"]')
    py_args+=("${rt_names[$i]}" "${rt_paths[$i]}" "${rt_roots[$i]}" "$bundle" "$sleeper")
done

# --- the measuring loop -----------------------------------------------------------
cat >"$tmp/bench.py" <<'PY'
import ctypes, json, os, platform, select, signal, statistics, subprocess, sys, time

runs, warmup, as_json = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
tmp, crun_present = sys.argv[4], sys.argv[5] == "present"
rest = sys.argv[6:]
runtimes = [dict(name=rest[i], path=rest[i + 1], root=rest[i + 2], bundle=rest[i + 3],
                 sleeper=rest[i + 4])
            for i in range(0, len(rest), 5)]
OPTIONAL = {"crun"}          # failing runtimes in this set are skipped, not fatal
WAIT_TIMEOUT_MS = 30_000     # a `true` that has not exited by then is a failure
errfile = os.path.join(tmp, "stderr")
# Become a child subreaper: a container's init, orphaned when `create` exits, is then
# reparented to us instead of PID 1, so we can tell how it ended (and that `true`
# exited 0). The same for every runtime; reaping is outside the timed spans.
try:
    SUBREAPER = ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
except Exception:
    SUBREAPER = False
tag = f"bb{os.getpid()}"


class RuntimeFailed(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cmd(rt, *args):
    """Run one runtime command; raise RuntimeFailed with its stderr if it fails."""
    argv = [rt["path"], "--root", rt["root"], *args]
    # stderr goes to a file, not a pipe: after `create` the container's init holds
    # the runtime's stdio until it exits, so a pipe would never reach EOF.
    with open(errfile, "wb") as err:
        rc = subprocess.call(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
    if rc != 0:
        with open(errfile, "rb") as err:
            text = err.read().decode(errors="replace").strip()
        raise RuntimeFailed(f"{rt['name']}: `{' '.join(argv)}` exited {rc}\n"
                            f"--- stderr ---\n{text or '(empty)'}")


def init_status(pid, block):
    """Reap the container's init (we are its subreaper) and describe how it ended."""
    if not SUBREAPER:
        return None
    try:
        got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:
        return None
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with status {code}"


def reap_strays():
    """Reap orphans reparented to us (intermediate processes of a runtime's create)."""
    if not SUBREAPER:
        return
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def lifecycle(rt, i):
    """create, start, wait, delete; returns per-phase ns."""
    cid = f"{tag}-{rt['name']}-{i}"
    pidfile = os.path.join(tmp, cid + ".pid")
    t0 = time.perf_counter_ns()
    cmd(rt, "create", "--bundle", rt["bundle"], "--pid-file", pidfile, cid)
    with open(pidfile) as f:
        pid = int(f.read().strip())
    # Open the pidfd before `start`, so the pid cannot exit (and be reused) unseen.
    pidfd = os.pidfd_open(pid)
    t1 = time.perf_counter_ns()
    try:
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        try:
            cmd(rt, "start", cid)
        except RuntimeFailed as e:
            if p.poll(0):  # the init was already gone: say how, if we can
                how = init_status(pid, block=True) or "ended (status unknown)"
                raise RuntimeFailed(f"{e}\n--- diagnosis ---\nthe container's init "
                                    f"(pid {pid}) {how} before or during `start`") from None
            raise
        t2 = time.perf_counter_ns()
        if not p.poll(WAIT_TIMEOUT_MS):
            raise RuntimeFailed(f"{rt['name']}: container {cid} (pid {pid}) still "
                                f"running {WAIT_TIMEOUT_MS} ms after start")
        t3 = time.perf_counter_ns()
    finally:
        os.close(pidfd)
    # Not timed: collect the status (`true` must exit 0), so the init is fully gone,
    # the same way for every runtime, before `delete`.
    how = init_status(pid, block=True)
    if how is not None and how != "exited with status 0":
        raise RuntimeFailed(f"{rt['name']}: container {cid}: `true` {how}")
    t3b = time.perf_counter_ns()
    cmd(rt, "delete", cid)
    t4 = time.perf_counter_ns()
    os.unlink(pidfile)
    reap_strays()
    return dict(total=t4 - t3b + t3 - t0, create=t1 - t0, start=t2 - t1, wait=t3 - t2,
                delete=t4 - t3b)


def oneshot(rt, i):
    cid = f"{tag}-{rt['name']}-run-{i}"
    t0 = time.perf_counter_ns()
    cmd(rt, "run", "--bundle", rt["bundle"], cid)
    t1 = time.perf_counter_ns()
    reap_strays()
    return t1 - t0


def detached(rt, i):
    """run -d of a sleeping container, then delete --force: how engines stop one."""
    cid = f"{tag}-{rt['name']}-kill-{i}"
    t0 = time.perf_counter_ns()
    cmd(rt, "run", "-d", "--bundle", rt["sleeper"], cid)
    t1 = time.perf_counter_ns()
    cmd(rt, "delete", "--force", cid)
    t2 = time.perf_counter_ns()
    reap_strays()
    return dict(total=t2 - t0, run_d=t1 - t0, delete_f=t2 - t1)


def version(rt):
    try:
        out = subprocess.run([rt["path"], "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        return out.splitlines()[0].strip() if out else "?"
    except Exception:
        return "?"


skipped = {}
if not crun_present:
    skipped["crun"] = "not installed"

# Preflight: one of each figure per runtime. Optional runtimes that fail are skipped.
active = []
for rt in runtimes:
    try:
        lifecycle(rt, "pre")
        oneshot(rt, "pre")
        detached(rt, "pre")
        active.append(rt)
    except RuntimeFailed as e:
        if rt["name"] in OPTIONAL:
            first = str(e).split("--- stderr ---\n", 1)[-1].strip().splitlines()
            reason = first[-1] if first else str(e)
            skipped[rt["name"]] = f"fails on this machine: {reason}"
            log(f"skipping {rt['name']}: {e}")
            try:
                cmd(rt, "delete", "--force", f"{tag}-{rt['name']}-pre")
            except RuntimeFailed:
                pass
        else:
            log(f"FAILED in preflight: {e}")
            sys.exit(1)

samples = {rt["name"]: dict(lifecycle=[], run=[], kill=[]) for rt in active}
tty = sys.stderr.isatty()
try:
    for i in range(warmup + runs):
        timed = i >= warmup
        order = active if i % 2 == 0 else active[::-1]
        for rt in order:
            r = lifecycle(rt, i)
            if timed:
                samples[rt["name"]]["lifecycle"].append(r)
        for rt in order:
            r = oneshot(rt, i)
            if timed:
                samples[rt["name"]]["run"].append(r)
        for rt in order:
            r = detached(rt, i)
            if timed:
                samples[rt["name"]]["kill"].append(r)
        if tty:
            print(f"\r  {i + 1}/{warmup + runs} iterations", end="", file=sys.stderr,
                  flush=True)
except RuntimeFailed as e:
    if tty:
        print(file=sys.stderr)
    log(f"FAILED at iteration {i}: {e}")
    sys.exit(1)
except KeyboardInterrupt:
    log("\ninterrupted")
    sys.exit(130)
if tty:
    print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)


def ms(ns):
    return ns / 1e6


def stats(xs_ns):
    xs = sorted(ms(x) for x in xs_ns)
    q = statistics.quantiles(xs, n=10, method="inclusive")
    return dict(median_ms=round(statistics.median(xs), 3), p90_ms=round(q[8], 3),
                min_ms=round(xs[0], 3), mean_ms=round(statistics.fmean(xs), 3),
                max_ms=round(xs[-1], 3))


result = dict(
    benchmark="lifecycle of a `true` container",
    runs=runs, warmup=warmup, interleaved=True, unit="ms",
    machine=dict(kernel=platform.release(), cpus=os.cpu_count()),
    runtimes={}, ratios={}, skipped=skipped)
for rt in active:
    s = samples[rt["name"]]
    lc = s["lifecycle"]
    result["runtimes"][rt["name"]] = dict(
        path=rt["path"], version=version(rt),
        lifecycle=stats([r["total"] for r in lc]),
        lifecycle_phases_median_ms={
            ph: round(statistics.median(ms(r[ph]) for r in lc), 3)
            for ph in ("create", "start", "wait", "delete")},
        run=stats(s["run"]),
        run_d_delete_f=stats([r["total"] for r in s["kill"]]),
        run_d_delete_f_phases_median_ms={
            ph: round(statistics.median(ms(r[ph]) for r in s["kill"]), 3)
            for ph in ("run_d", "delete_f")})

base = "berth-runc"
for other in [rt["name"] for rt in active if rt["name"] != base]:
    ratio = {}
    for fig, sample in (("lifecycle", "lifecycle"), ("run", "run"),
                        ("run_d_delete_f", "kill")):
        a = result["runtimes"][base][fig]["median_ms"]
        b = result["runtimes"][other][fig]["median_ms"]
        ratio[fig] = round(a / b, 3)
        # Median of per-iteration ratios: pairs ran back to back, so this one
        # cancels slow drifts in machine load.
        key = None if fig == "run" else "total"
        xa = [r[key] if key else r for r in samples[base][sample]]
        xb = [r[key] if key else r for r in samples[other][sample]]
        ratio[fig + "_paired"] = round(statistics.median(x / y for x, y in zip(xa, xb)), 3)
    result["ratios"][f"{base}/{other}"] = ratio

if as_json:
    print(json.dumps(result, indent=2))
    sys.exit(0)

print(f"lifecycle of a `true` container, {runs} runs each (+{warmup} warm-up), interleaved")
print(f"kernel {result['machine']['kernel']}, {result['machine']['cpus']} CPUs; "
      + "; ".join(f"{n}: {v['version']}" for n, v in result["runtimes"].items()))
print()
w = max(len(n) for n in result["runtimes"]) + 20
print(f"{'':{w}}  {'median':>9}  {'p90':>9}  {'min':>9}")
for fig, label in (("lifecycle", "(4 cmds)"), ("run", "run"),
                   ("run_d_delete_f", "run -d + delete -f")):
    for name, v in result["runtimes"].items():
        st = v[fig]
        print(f"{name + ' ' + label:{w}}  {st['median_ms']:6.2f} ms  {st['p90_ms']:6.2f} ms"
              f"  {st['min_ms']:6.2f} ms")
print()
print("4-cmd phases, median:")
for name, v in result["runtimes"].items():
    ph = v["lifecycle_phases_median_ms"]
    print(f"  {name:{w - 2}}  " + "  ".join(f"{k} {ph[k]:.2f}" for k in ph) + "  (ms)")
print("run -d + delete -f phases, median:")
for name, v in result["runtimes"].items():
    ph = v["run_d_delete_f_phases_median_ms"]
    print(f"  {name:{w - 2}}  " + "  ".join(f"{k} {ph[k]:.2f}" for k in ph) + "  (ms)")
print()
for pair, r in result["ratios"].items():
    print(f"ratio {pair} (median): {r['lifecycle']:.2f} (4 cmds), {r['run']:.2f} (run), "
          f"{r['run_d_delete_f']:.2f} (run -d + delete -f)   [paired per-iteration: "
          f"{r['lifecycle_paired']:.2f}, {r['run_paired']:.2f}, {r['run_d_delete_f_paired']:.2f}]")
for name, why in skipped.items():
    print(f"{name}: skipped ({why})")
PY

python3 "$tmp/bench.py" "${py_args[@]}"
