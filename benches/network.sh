#!/usr/bin/env bash
# Per-container network cost, side by side: Berth's native bridge driver vs the CNI
# bridge chain (the plugins run the way containerd runs them) vs podman 4.3.1 on its CNI
# bridge network. With --burst: berth-loadtest's 1000-container burst on the default
# bridge (and with a published port each) vs podman's burst of the same shape.
#
# Everything runs inside a network namespace this script makes (berth-bench-$$) — its
# berthd, the CNI plugins, podman, every bridge, veth, address and iptables rule — and
# `ip netns del` takes it down on exit (also on Ctrl-C or an error). The machine's own
# network is never touched. Processes enter it with `nsenter --net` (the network
# namespace only: unlike `ip netns exec` no private mount namespace hides the mounts
# berthd and podman make from their later commands).
#
#   (a) native: N containers (`sleep`, inline spec, a busybox root filesystem) created,
#       started and deleted one at a time through berthd's API, on the default bridge
#       and with no network; (time with − time without) / N is the network's cost per
#       container, for setup (POST → running) and for teardown (DELETE).
#   (b) CNI: N namespaces (`ip netns add`), the chain bridge+host-local run by a small
#       driver (one exec per plugin, prevResult chained, DEL in reverse with the ADD's
#       result), ADD then DEL each, timed per container; then bridge+portmap+firewall
#       with one published port each.
#   (c) podman: N `podman run -d --network bridge` (10 in parallel) of a local busybox
#       image vs `--network none`, and `podman rm -f` of them; its own --root, --runroot,
#       --tmpdir and CNI config dir under the temp dir (the default network "podman"
#       defined there, host-local's dataDir there too).
#
# Usage: benches/network.sh [-n N] [--bin-dir DIR] [--no-podman] [--burst] [--json]
# Must run as root. Needs ip, nsenter, python3, iptables, containernetworking-plugins
# (/usr/lib/cni); podman for (c) and --burst (installed with apt-get if missing).
set -euo pipefail

prog=$(basename "$0")
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)

n=100
bin_dir=""
podman=1
burst=0
json=0
cni_dir=/usr/lib/cni

usage() {
    cat <<EOF
usage: $prog [-n N] [--bin-dir DIR] [--no-podman] [--burst] [--json]

Per-container network setup + teardown: Berth native vs the CNI bridge chain vs podman,
all inside a network namespace of the script's own.

  -n N            containers per figure (default 100)
  --bin-dir DIR   berthd, berth-shim, berth-runc, berth-loadtest from DIR (default:
                  cargo build --release of them in $repo_root)
  --no-podman     skip podman
  --burst         instead: berth-loadtest -n 1000 -c 100 --network bridge (and
                  --publish; the median of 3 runs) vs podman's burst (N containers,
                  10 in parallel: none, bridge, bridge with -p)
  --json          one JSON object on stdout instead of the table
  -h, --help      this help
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        -n) need_arg "$@"; n=$2; shift 2 ;;
        --bin-dir) need_arg "$@"; bin_dir=$2; shift 2 ;;
        --no-podman) podman=0; shift ;;
        --burst) burst=1; shift ;;
        --json) json=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 5000 ]] || die "-n wants an integer 1..5000, got '$n'"
[[ $EUID -eq 0 ]] || die "must run as root (namespaces, bridges, iptables)"
for tool in ip nsenter python3 iptables-save; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
for p in bridge host-local portmap firewall; do
    [[ -x $cni_dir/$p ]] || die "$cni_dir/$p missing: apt-get install containernetworking-plugins"
done
[[ -x /bin/busybox ]] || die "/bin/busybox missing: apt-get install busybox-static"
if [[ $podman -eq 1 ]] && ! command -v podman >/dev/null; then
    note "installing podman (apt-get install --no-install-recommends podman)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman >&2 \
        || die "cannot install podman (or run with --no-podman)"
fi

# --- binaries -----------------------------------------------------------------------
if [[ -z $bin_dir ]]; then
    note "building berthd, berth-shim, berth-runc, berth-loadtest (cargo build --release)"
    (cd "$repo_root" && cargo build --release -q -p berthd -p berth-shim -p berth-runc \
        -p berth-loadtest >&2) || die "cargo build failed"
    bin_dir=${CARGO_TARGET_DIR:-$repo_root/target}/release
fi
bin_dir=$(realpath "$bin_dir")
for b in berthd berth-shim berth-runc berth-loadtest; do
    [[ -x $bin_dir/$b ]] || die "not an executable: $bin_dir/$b"
done

# --- the namespace, the temp dir, and their cleanup ---------------------------------
ns=berth-bench-$$
tmp=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
chmod 711 "$tmp"
berthd_pid=""
podman_args=()
cni_cache_made=0
[[ -e /var/lib/cni ]] || cni_cache_made=1

cleanup() {
    local rc=$? c
    trap - EXIT INT TERM
    set +e
    if [[ -n $berthd_pid ]] && kill -0 "$berthd_pid" 2>/dev/null; then
        python3 "$tmp/measure.py" native-clean "$tmp/berthd/berth.sock" 2>/dev/null
        kill -TERM "$berthd_pid"
        wait "$berthd_pid" 2>/dev/null
    fi
    if [[ ${#podman_args[@]} -gt 0 ]]; then
        inns podman "${podman_args[@]}" rm -a -f -t 0 >/dev/null 2>&1
    fi
    # The cgroups of berthd's containers and of podman's (conmon's too), deepest first.
    for c in /sys/fs/cgroup/*/berth-bench-net-$$* /sys/fs/cgroup/berth-bench-net-$$*; do
        [[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    # podman's CNI library keeps its cache there; gone when the script made it.
    if [[ $cni_cache_made -eq 1 ]]; then
        rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
    fi
    # The CNI part's container namespaces.
    for c in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^berth-bench-$$-"); do
        ip netns del "$c"
    done
    ip netns del "$ns" 2>/dev/null
    grep -o " $tmp[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export BENCH_CGROUP_PARENT=/berth-bench-net-$$
ip netns add "$ns"
ip -n "$ns" link set lo up
inns() { nsenter --net="/run/netns/$ns" "$@"; }

# --- the measuring code: one python3 process per part ---------------------------------
cat >"$tmp/measure.py" <<'PY'
import http.client, json, os, socket, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor

class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("berth", timeout=120)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

def call(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)

def native(sock, spec_path, rootfs, n, network, tag):
    """Create+start N containers one at a time (POST until the record says running),
    then delete them one at a time; returns (setup seconds, teardown seconds)."""
    spec = json.load(open(spec_path))
    conn = Unix(sock)
    ids = [f"nb-{tag}-{i}" for i in range(n)]
    t0 = time.perf_counter()
    for i, cid in enumerate(ids):
        spec["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{cid}"
        body = {"id": cid, "spec": spec, "rootfs": rootfs, "network": network}
        st, ans = call(conn, "POST", "/v1/containers", body)
        if st >= 300:
            sys.exit(f"POST {cid} ({network}): {st} {ans}")
        while True:
            st, rec = call(conn, "GET", f"/v1/containers/{cid}")
            state = (rec or {}).get("state")
            if state == "running":
                break
            if state in ("failed", "stopped"):
                sys.exit(f"{cid} ({network}): {state}: {rec.get('error')}")
            time.sleep(0.0005)
    t1 = time.perf_counter()
    for cid in ids:
        while True:
            st, ans = call(conn, "DELETE", f"/v1/containers/{cid}?force=true")
            if st < 300 or st == 404:
                break
            if st not in (409, 429, 503):
                sys.exit(f"DELETE {cid}: {st} {ans}")
            time.sleep(0.001)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1

def cmd_native(sock, spec_path, rootfs, n):
    # Warm up both paths (the bridge and the first firewall/ipam files are made once).
    native(sock, spec_path, rootfs, 3, "bridge", "warm-b")
    native(sock, spec_path, rootfs, 3, "none", "warm-n")
    out = {}
    for network in ("none", "bridge", "none", "bridge"):
        s, d = native(sock, spec_path, rootfs, n, network, f"{network}-{len(out)}")
        prev = out.get(network, (s, d))
        out[network] = (min(prev[0], s), min(prev[1], d))  # the better of two rounds
    print(json.dumps({"n": n, "none": out["none"], "bridge": out["bridge"]}))

def cmd_native_clean(sock):
    conn = Unix(sock)
    st, page = call(conn, "GET", "/v1/containers")
    for r in (page or {}).get("containers", []):
        call(conn, "DELETE", f"/v1/containers/{r['id']}?force=true")

def run_plugin(plugin_dir, plugin, command, conf, env):
    e = dict(os.environ, CNI_COMMAND=command, CNI_PATH=plugin_dir, **env)
    p = subprocess.run([os.path.join(plugin_dir, plugin)], input=json.dumps(conf).encode(),
                       env=e, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"CNI {command} {plugin}: {p.stdout.decode()} {p.stderr.decode()}")
    return json.loads(p.stdout) if p.stdout.strip() else None

def chain(conflist, plugin_dir, command, env, runtime, prev=None):
    """Run a conflist the way libcni does: each plugin with name, cniVersion, its own
    config, runtimeConfig of its capabilities and prevResult; DEL in reverse."""
    plugins = conflist["plugins"] if command == "ADD" else list(reversed(conflist["plugins"]))
    result = prev
    for p in plugins:
        conf = dict(p, name=conflist["name"], cniVersion=conflist["cniVersion"])
        caps = {k: v for k, v in runtime.items() if p.get("capabilities", {}).get(k)}
        if caps:
            conf["runtimeConfig"] = caps
        if result is not None:
            conf["prevResult"] = result
        r = run_plugin(plugin_dir, p["type"], command, conf, env)
        if command == "ADD":
            result = r
    return result

def cmd_cni(conflist_path, plugin_dir, netns_prefix, n, publish):
    conflist = json.load(open(conflist_path))
    add, dele = [], []
    for i in range(n + 2):
        name = f"{netns_prefix}-{i}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        env = {"CNI_CONTAINERID": f"cni-bench-{i}", "CNI_NETNS": f"/run/netns/{name}",
               "CNI_IFNAME": "eth0"}
        runtime = {"portMappings": [{"hostPort": 20000 + i, "containerPort": 8080,
                                     "protocol": "tcp"}]} if publish else {}
        t0 = time.perf_counter()
        result = chain(conflist, plugin_dir, "ADD", env, runtime)
        t1 = time.perf_counter()
        chain(conflist, plugin_dir, "DEL", env, runtime, prev=result)
        t2 = time.perf_counter()
        subprocess.run(["ip", "netns", "del", name], check=True)
        if i >= 2:  # the first two make the bridge and the chains: not per container
            add.append(t1 - t0)
            dele.append(t2 - t1)
    print(json.dumps({"n": n, "add": sum(add), "del": sum(dele),
                      "add_median": sorted(add)[len(add) // 2],
                      "del_median": sorted(dele)[len(dele) // 2]}))

def cmd_podman(podman_args, image, n, network, parallel, publish):
    """N `podman run -d` with `parallel` at once, then `podman rm -f` of them."""
    def run(i):
        args = ["podman", *podman_args, "run", "-d", "--pull", "never", "--name",
                f"pb-{network}-{i}", "--network", network,
                "--cgroup-parent", f"{CGROUP_PARENT}-podman"]
        if publish:
            args += ["-p", f"{20000 + i}:8080"]
        p = subprocess.run(args + [image, "sleep", "1000"], capture_output=True)
        if p.returncode != 0:
            raise RuntimeError(f"podman run {i}: {p.stderr.decode().strip()}")
    def rm(i):
        p = subprocess.run(["podman", *podman_args, "rm", "-f", "-t", "0",
                            f"pb-{network}-{i}"], capture_output=True)
        if p.returncode != 0:
            raise RuntimeError(f"podman rm {i}: {p.stderr.decode().strip()}")
    with ThreadPoolExecutor(parallel) as pool:
        t0 = time.perf_counter()
        list(pool.map(run, range(n)))
        t1 = time.perf_counter()
        list(pool.map(rm, range(n)))
        t2 = time.perf_counter()
    print(json.dumps({"n": n, "network": network, "publish": publish,
                      "run": t1 - t0, "rm": t2 - t1}))

if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    CGROUP_PARENT = os.environ.get("BENCH_CGROUP_PARENT", "/berth-bench-net")
    if what == "native":
        cmd_native(args[0], args[1], args[2], int(args[3]))
    elif what == "native-clean":
        cmd_native_clean(args[0])
    elif what == "cni":
        cmd_cni(args[0], args[1], args[2], int(args[3]), args[4] == "publish")
    elif what == "podman":
        cmd_podman(json.loads(args[0]), args[1], int(args[2]), args[3], int(args[4]),
                   args[5] == "publish")
PY

# A busybox root filesystem (no download): /bin/busybox and the applets the spec runs,
# with the directories the spec mounts over.
rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$rootfs/bin/busybox"
for a in sh sleep; do ln -s busybox "$rootfs/bin/$a"; done

# --- podman's private setup ----------------------------------------------------------
lim() { local v; v=$(ulimit "$1"); [[ $v == unlimited ]] && v=-1; echo "$v"; }

podman_setup() {
    local p=$tmp/podman
    mkdir -p "$p"/{root,runroot,tmp,cni,cni-data}
    # The default network "podman", as podman 4.3 defines it, with host-local's dataDir
    # in the temp dir (so no allocation is kept in /var/lib/cni).
    cat >"$p/cni/87-podman-bridge.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "podman", "plugins": [
  {"type": "bridge", "bridge": "cni-podman0", "isGateway": true, "ipMasq": true,
   "hairpinMode": true,
   "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]],
            "dataDir": "$p/cni-data"}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "firewall"},
  {"type": "tuning"}
]}
EOF
    # podman raises the containers' open-file and process limits to 1048576 by default,
    # which fails without CAP_SYS_RESOURCE (as in some sandboxes): the open-file limits
    # of this shell, and a process limit well below any hard limit (sleep needs one).
    cat >"$p/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(lim -Sn):$(lim -Hn)", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$cni_dir"]
network_config_dir = "$p/cni"
default_network = "podman"
EOF
    export CONTAINERS_CONF=$p/containers.conf
    podman_args=(--root "$p/root" --runroot "$p/runroot" --tmpdir "$p/tmp"
                 --storage-driver overlay --network-config-dir "$p/cni"
                 --cgroup-manager cgroupfs --events-backend file)
    tar -C "$rootfs" -cf "$tmp/rootfs.tar" .
    inns podman "${podman_args[@]}" import -q "$tmp/rootfs.tar" localhost/berth-bench-busybox:1 \
        >/dev/null || die "podman import failed"
    # One of each, untimed: the bridge and the firewall chains are made once.
    for net in bridge none; do
        inns podman "${podman_args[@]}" run -d --pull never --name "pw-$net" --network "$net" \
            --cgroup-parent "$BENCH_CGROUP_PARENT-podman" \
            localhost/berth-bench-busybox:1 sleep 1000 >/dev/null || die "podman run failed"
        inns podman "${podman_args[@]}" rm -f -t 0 "pw-$net" >/dev/null
    done
}

podman_measure() { # N network parallel publish|no -> JSON
    inns python3 "$tmp/measure.py" podman "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \
        "${podman_args[@]}")" localhost/berth-bench-busybox:1 "$1" "$2" "$3" "$4"
}

# --- --burst ----------------------------------------------------------------------------
if [[ $burst -eq 1 ]]; then
    results=()
    for pub in no publish; do
        flags=(--network bridge)
        [[ $pub == publish ]] && flags+=(--publish)
        note "berth-loadtest -n 1000 -c 100 --repeat 3 ${flags[*]} (the median run)"
        # The harness makes a network namespace of its own for its berthd.
        out=$("$bin_dir/berth-loadtest" --bin-dir "$bin_dir" -n 1000 -c 100 --repeat 3 "${flags[@]}" --json) \
            || { echo "$out" >&2; die "berth-loadtest ${flags[*]} failed"; }
        results+=("$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(json.dumps({"starts_per_second": r["starts_per_second"], "ok": r["ok"], "left_behind": r["left_behind"]}))' "$out")")
    done
    pod_none="" pod_bridge="" pod_pub=""
    if [[ $podman -eq 1 ]]; then
        podman_setup
        note "podman: $n containers, 10 in parallel: none, bridge, bridge with -p"
        pod_none=$(podman_measure "$n" none 10 no)
        pod_bridge=$(podman_measure "$n" bridge 10 no)
        pod_pub=$(podman_measure "$n" bridge 10 publish)
    fi
    python3 - "$json" "${results[0]}" "${results[1]}" "${pod_none:-null}" "${pod_bridge:-null}" "${pod_pub:-null}" <<'PY'
import json, sys
as_json = sys.argv[1] == "1"
b, bp, pn, pb, pp = (json.loads(a) for a in sys.argv[2:])
rate = lambda r: r["n"] / r["run"] if r else None
out = {"berth_bridge_starts_per_second": b["starts_per_second"],
       "berth_publish_starts_per_second": bp["starts_per_second"],
       "berth_clean": b["ok"] and bp["ok"],
       "podman_none_starts_per_second": rate(pn),
       "podman_bridge_starts_per_second": rate(pb),
       "podman_publish_starts_per_second": rate(pp)}
if pb:
    out["ratio_bridge"] = out["berth_bridge_starts_per_second"] / rate(pb)
    out["ratio_publish"] = out["berth_publish_starts_per_second"] / rate(pp)
if as_json:
    print(json.dumps(out)); sys.exit(0)
f = lambda x: "-" if x is None else f"{x:.1f}"
print(f"burst (starts/s)              berth (1000, 100 clients)   podman ({pn['n'] if pn else '-'}, 10 parallel)   ratio")
print(f"  default bridge              {f(out['berth_bridge_starts_per_second']):>10}   {f(out['podman_bridge_starts_per_second']):>24}   {f(out.get('ratio_bridge')):>6}x  (goal >= 150/s and >= 10x)")
print(f"  bridge + a published port   {f(out['berth_publish_starts_per_second']):>10}   {f(out['podman_publish_starts_per_second']):>24}   {f(out.get('ratio_publish')):>6}x")
print(f"  no network (podman)         {'':>10}   {f(out['podman_none_starts_per_second']):>24}")
print(f"  berth runs clean (nothing left behind): {out['berth_clean']}")
PY
    exit 0
fi

# --- (a) native -----------------------------------------------------------------------
note "(a) berthd in $ns: $n containers on the default bridge and with no network"
mkdir -p "$tmp/berthd/cni" "$tmp/spec"
"$bin_dir/berth-runc" spec --bundle "$tmp/spec"
python3 - "$tmp/spec/config.json" <<'PY'
import json, sys
p = sys.argv[1]; s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["sleep", "1000"]
s["ociVersion"] = "1.0.2"
json.dump(s, open(p, "w"))
PY
# nsenter execs berthd: $! is berthd's pid.
nsenter --net="/run/netns/$ns" "$bin_dir/berthd" --socket "$tmp/berthd/berth.sock" --state-dir "$tmp/berthd/state" \
    --shim "$bin_dir/berth-shim" --images-root "$tmp/berthd/images" \
    --network-root "$tmp/berthd/network" --cni-conf-dir "$tmp/berthd/cni" \
    --log-level warn 2>"$tmp/berthd.log" &
berthd_pid=$!
for _ in $(seq 300); do
    [[ -S $tmp/berthd/berth.sock ]] && break
    kill -0 "$berthd_pid" 2>/dev/null || die "berthd exited: $(tail -3 "$tmp/berthd.log")"
    sleep 0.05
done
native=$(python3 "$tmp/measure.py" native "$tmp/berthd/berth.sock" "$tmp/spec/config.json" "$rootfs" "$n") \
    || die "native measurement failed: $(tail -3 "$tmp/berthd.log")"
python3 "$tmp/measure.py" native-clean "$tmp/berthd/berth.sock"
kill -TERM "$berthd_pid"; wait "$berthd_pid" || true; berthd_pid=""

# --- (b) the CNI chains ---------------------------------------------------------------
cni_conf() { # name bridge subnet extra-plugins -> conflist path
    cat >"$tmp/$1.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "$1", "plugins": [
  {"type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$3"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$tmp/cni-data"}}$4
]}
EOF
    echo "$tmp/$1.conflist"
}
note "(b) CNI bridge+host-local, then bridge+portmap+firewall: $n namespaces each"
plain=$(cni_conf bench-bridge cni-bench0 10.77.0.0/16 "")
full=$(cni_conf bench-full cni-bench1 10.78.0.0/16 ',
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "firewall"}')
cni_plain=$(inns python3 "$tmp/measure.py" cni "$plain" "$cni_dir" "berth-bench-$$-b" "$n" no)
cni_full=$(inns python3 "$tmp/measure.py" cni "$full" "$cni_dir" "berth-bench-$$-f" "$n" publish)

# --- (c) podman -----------------------------------------------------------------------
pod_none=null pod_bridge=null
if [[ $podman -eq 1 ]]; then
    note "(c) podman $(podman --version | awk '{print $3}'): $n containers, 10 in parallel, bridge and none"
    podman_setup
    pod_none=$(podman_measure "$n" none 10 no)
    pod_bridge=$(podman_measure "$n" bridge 10 no)
fi

python3 - "$json" "$native" "$cni_plain" "$cni_full" "$pod_none" "$pod_bridge" <<'PY'
import json, sys
as_json = sys.argv[1] == "1"
nat, plain, full, pn, pb = (json.loads(a) for a in sys.argv[2:])
n = nat["n"]
ms = lambda s, k: s * 1e3 / k
native_setup = ms(nat["bridge"][0] - nat["none"][0], n)
native_down = ms(nat["bridge"][1] - nat["none"][1], n)
out = {
    "n": n,
    "native_setup_ms": native_setup, "native_teardown_ms": native_down,
    "native_ms": native_setup + native_down,
    "native_start_none_ms": ms(nat["none"][0], n), "native_start_bridge_ms": ms(nat["bridge"][0], n),
    "cni_bridge_add_ms": ms(plain["add"], plain["n"]), "cni_bridge_del_ms": ms(plain["del"], plain["n"]),
    "cni_bridge_ms": ms(plain["add"] + plain["del"], plain["n"]),
    "cni_full_add_ms": ms(full["add"], full["n"]), "cni_full_del_ms": ms(full["del"], full["n"]),
    "cni_full_ms": ms(full["add"] + full["del"], full["n"]),
}
out["ratio_native_cni_bridge"] = out["native_ms"] / out["cni_bridge_ms"]
out["ratio_native_setup_cni_add"] = native_setup / out["cni_bridge_add_ms"]
out["ratio_native_cni_full"] = out["native_ms"] / out["cni_full_ms"]
if pn and pb:
    out["podman_none_ms"] = ms(pn["run"] + pn["rm"], pn["n"])
    out["podman_bridge_ms"] = ms(pb["run"] + pb["rm"], pb["n"])
    out["podman_network_ms"] = out["podman_bridge_ms"] - out["podman_none_ms"]
    out["podman_none_starts_per_second"] = pn["n"] / pn["run"]
    out["podman_bridge_starts_per_second"] = pb["n"] / pb["run"]
    out["ratio_native_podman"] = out["native_ms"] / out["podman_network_ms"] if out["podman_network_ms"] > 0 else None
if as_json:
    print(json.dumps(out)); sys.exit(0)
print(f"network setup + teardown per container (ms), N={n}, inside a private namespace")
print(f"  {'':40}{'setup':>9}{'teardown':>10}{'total':>9}{'native/x':>10}")
print(f"  {'Berth native (bridge − none, serial)':40}{native_setup:9.2f}{native_down:10.2f}{out['native_ms']:9.2f}{'':>10}")
print(f"  {'CNI bridge + host-local':40}{out['cni_bridge_add_ms']:9.2f}{out['cni_bridge_del_ms']:10.2f}{out['cni_bridge_ms']:9.2f}{out['ratio_native_cni_bridge']:9.3f}x")
print(f"  {'CNI bridge + portmap + firewall':40}{out['cni_full_add_ms']:9.2f}{out['cni_full_del_ms']:10.2f}{out['cni_full_ms']:9.2f}{out['ratio_native_cni_full']:9.3f}x")
if pn and pb:
    pr = out.get("ratio_native_podman")
    print(f"  {'podman bridge − none (10 parallel)':40}{ms(pb['run'] - pn['run'], pn['n']):9.2f}{ms(pb['rm'] - pn['rm'], pn['n']):10.2f}{out['podman_network_ms']:9.2f}{(f'{pr:9.3f}x' if pr else '        -')}")
    print(f"  podman run -d: {out['podman_none_starts_per_second']:.1f}/s with no network, {out['podman_bridge_starts_per_second']:.1f}/s on the bridge")
print(f"  Berth create→running, serial: {out['native_start_none_ms']:.2f} ms with no network, {out['native_start_bridge_ms']:.2f} ms on the bridge")
print(f"  goal: native setup <= 0.1x the CNI bridge plugin: setup {out['ratio_native_setup_cni_add']:.3f}x its ADD, setup+teardown {out['ratio_native_cni_bridge']:.3f}x its ADD+DEL")
PY
