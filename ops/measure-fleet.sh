#!/usr/bin/env bash
# Measures the demo at a given fleet size: start time, points ingested per second and CPU.
#   ops/measure-fleet.sh [ROOMS] [SECONDS]        (defaults: 2100 rooms, 60 s)
# Needs a release build (cargo build --release). The demo process holds everything: the
# embedded broker, the simulator with its gateways, and the platform; its CPU is all of them.
# For the platform alone see `cistern run` + `cistern simulate` (the fleet-scale issue adds
# `cistern bench`, which separates them properly).
set -euo pipefail
cd "$(dirname "$0")/.."
rooms=${1:-2100}
secs=${2:-60}
bin=target/release/cistern
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp); err=$(mktemp)
data=$(mktemp -d)
"$bin" demo --rooms "$rooms" --http "127.0.0.1:$http_port" --mqtt 127.0.0.1:0 --data "$data" >"$out" 2>"$err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$out" "$err" "$data"' EXIT
for _ in $(seq 1 600); do grep -q '^ready ' "$out" && break; sleep 0.1; done
grep '^ready ' "$out" || { echo "demo not ready"; tail "$err"; exit 1; }
points() { curl -s "http://127.0.0.1:$http_port/metrics" | awk '/^cistern_ingest_points_total/ {s+=$2} END {print s+0}'; }
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
tck=$(getconf CLK_TCK)
sleep 5   # let the first burst settle
p0=$(points); c0=$(cpu); t0=$(date +%s.%N)
sleep "$secs"
p1=$(points); c1=$(cpu); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
python3 - "$p0" "$p1" "$c0" "$c1" "$t0" "$t1" "$tck" "$rss" "$rooms" <<'PY'
import sys
p0,p1,c0,c1,t0,t1,tck,rss,rooms = map(float, sys.argv[1:])
dt = t1 - t0
cpu = (c1 - c0) / tck / dt
print(f"rooms={int(rooms)} window={dt:.1f}s points/s={(p1-p0)/dt:.0f} "
      f"cpu={cpu*100:.0f}% of one core ({cpu*50:.0f}% of 2 cores) rss={rss/1024:.0f}MiB")
PY
curl -s "http://127.0.0.1:$http_port/metrics" | grep -E '^cistern_ingest_rejected_total|^cistern_ingest_samples_duplicate_total' || true
# How far behind the historian is: the newest stored sample of one point against now.
now=$(date +%s%3N)
curl -s "http://127.0.0.1:$http_port/api/v1/history?point=XM-0002/T1.level&from=$((now-60000))&to=$((now+60000))" \
  | python3 -c 'import json,sys; s=json.load(sys.stdin)["series"][0]["samples"]; now=int(sys.argv[1]); print(f"history: newest stored sample {(now-s[-1][0])/1000:.1f} s old, {len(s)} samples in the last minute")' "$now" || true
du -sh "$data" | awk '{print "data dir: " $1}'
