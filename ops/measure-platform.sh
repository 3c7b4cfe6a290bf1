#!/usr/bin/env bash
# Measures the platform alone: `cistern run` against a real mosquitto, fed by `cistern simulate`
# in a separate process, so that the simulator's and the broker's CPU are not counted.
#   ops/measure-platform.sh [ROOMS] [SECONDS]     (defaults: 2100 rooms, 60 s)
# Needs a release build and Debian's mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."
rooms=${1:-2100}
secs=${2:-60}
bin=$PWD/target/release/cistern
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
mq=$(free_port); http=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 20000\nmax_queued_messages 1000000\n' "$mq" > "$dir/mosquitto.conf"
/usr/sbin/mosquitto -c "$dir/mosquitto.conf" 2>"$dir/mosquitto.log" &
mpid=$!
"$bin" inventory --rooms "$rooms" --seed 1 > "$dir/inventory.toml"
printf '[http]\nlisten = "127.0.0.1:%s"\n[inventory]\nfile = "inventory.toml"\n[mqtt]\nport = %s\n' "$http" "$mq" > "$dir/cistern.toml"
sleep 0.5
"$bin" run --config "$dir/cistern.toml" >"$dir/run.out" 2>"$dir/run.err" &
rpid=$!
trap "kill \$rpid \$spid \$mpid 2>/dev/null" EXIT
for _ in $(seq 1 300); do grep -q '^ready ' "$dir/run.out" && break; sleep 0.1; done
"$bin" simulate --rooms "$rooms" --seed 1 --mqtt "127.0.0.1:$mq" >"$dir/sim.out" 2>"$dir/sim.err" &
spid=$!
points() { curl -s "http://127.0.0.1:$http/metrics" | awk '/^cistern_ingest_points_total/ {s+=$2} END {print s+0}'; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
tck=$(getconf CLK_TCK)
sleep 10
p0=$(points); c0=$(cpu $rpid); s0=$(cpu $spid); m0=$(cpu $mpid); t0=$(date +%s.%N)
sleep "$secs"
p1=$(points); c1=$(cpu $rpid); s1=$(cpu $spid); m1=$(cpu $mpid); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/$rpid/status)
online=$(curl -s "http://127.0.0.1:$http/api/v1/rooms" | python3 -c 'import json,sys; print(json.load(sys.stdin)["online"])')
python3 - "$p0" "$p1" "$c0" "$c1" "$s0" "$s1" "$m0" "$m1" "$t0" "$t1" "$tck" "$rss" "$rooms" "$online" <<'PY'
import sys
p0,p1,c0,c1,s0,s1,m0,m1,t0,t1,tck,rss,rooms,online = map(float, sys.argv[1:])
dt = t1 - t0
f = lambda a, b: (b - a) / tck / dt * 100
print(f"rooms={int(rooms)} online={int(online)} window={dt:.1f}s points/s={(p1-p0)/dt:.0f} "
      f"platform cpu={f(c0,c1):.0f}% of one core, rss={rss/1024:.0f}MiB; "
      f"simulate cpu={f(s0,s1):.0f}%, mosquitto cpu={f(m0,m1):.0f}%")
PY
