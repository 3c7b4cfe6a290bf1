#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the real peers the tests talk to (Debian's
# mosquitto, etcd, prometheus, chromium, chromium-driver and a Chinese font; protoc), then checks formatting and lints and runs
# every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
# The web UI's end-to-end test drives a real headless Chromium through chromedriver.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# A Chinese font, so that the zh-CN screens render (and their screenshots read) in Chromium.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
# Clustering (the feature `cluster`, tests/it/cluster*.rs, `cistern bench failover`): Debian's etcd
# 3.4 server as the real etcd the nodes lease shards from, and protoc, which etcd-client's build
# needs to compile etcd's .proto files.
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
[ -x /usr/bin/protoc ] || missing+=(protobuf-compiler)
# `cistern bench failover --scenario partition` (tests/it/failover.rs) runs a node in a network
# namespace of its own (`ip netns`, veth; needs root) and cuts its link.
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing+=(iproute2)
# Clock skew between cluster nodes (tests/it/failover.rs, tests/it/cluster_alarm.rs, `--skew-ms`):
# libfaketime, preloaded into a node, moves its wall clock only.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing+=(faketime)
# Debian's prometheus ships both promtool and the server (tests/it/monitoring.rs).
{ command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } || missing+=(prometheus)
# A real syslog daemon the audit log forwards to (tests/it/audit.rs: RFC 5424 over UDP and TCP).
[ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
# A real SMTP server for the notifications' e-mail test (tests/it/notify.rs), run by Debian's python.
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ops/test.sh: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  echo "ops/test.sh: installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  # The tests start their own broker, etcd and Prometheus on free ports: keep the packages' services
  # from starting.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
# tests/it/modbus.rs checks the poller against an independent Modbus peer, a pymodbus server.
python3 -c 'import pymodbus' 2>/dev/null || python3 -m pip install -q pymodbus

# The WebSocket API's independent peer (tests/it/ws_protocol.rs runs tests/it/peers/ws_keepalive.py):
# Python's `websockets`, with its default-on keep-alive pings.
python3 -c 'import websockets' 2>/dev/null || pip install -q websockets

# A shard's MQTT session (tests/it/shard_ingest.rs) against an independent publisher: paho-mqtt.
python3 -c 'import paho.mqtt' 2>/dev/null || python3 -m pip install -q paho-mqtt

# REST conformance (ops/schemathesis.sh): schemathesis 4 against the live demo.
python3 -c 'import schemathesis' 2>/dev/null || python3 -m pip install -q 'schemathesis>=4.32,<5'

# Each phase says how long it took (and all of them again at the end): CI must stay under
# 30 minutes as tests are added, and this shows where the time goes.
timings=()
phase() { # NAME COMMAND...
  local name=$1 start=$SECONDS
  shift
  "$@"
  timings+=("$name $((SECONDS - start)) s")
  echo "ops/test.sh: $name took $((SECONDS - start)) s"
}

phase fmt cargo fmt --all -- --check
# Everything is checked and tested with the feature `cluster` (etcd, needs protoc); the README's
# demo builds without it, and so does the product without the lab (below).
phase clippy cargo clippy --workspace --all-targets --locked --features cistern/cluster -- -D warnings
phase demo-build cargo clippy -p cistern --locked --bins --lib -- -D warnings
# The product builds without the lab (src/lab: simulator, demo, benchmarks): `cistern run` with
# the feature `lab` off. A clippy run is a `cargo check` that also refuses warnings, such as an
# import left unused when the lab is gone.
phase product-without-lab cargo clippy -p cistern --no-default-features --locked --bins --lib -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  # cargo-nextest (.config/nextest.toml): each test in its own process, one pool across the
  # workspace's test binaries, every test's time printed, and a hung test killed and failed
  # after 5 minutes instead of stalling CI. It does not run doctests: cargo test does those.
  phase tests cargo nextest run --workspace --locked --features cistern/cluster
  phase doctests cargo test --workspace --locked --doc --features cistern/cluster
else
  echo "ops/test.sh: cargo-nextest is not installed (cargo install cargo-nextest --locked):" \
    "running cargo test, with no per-test timeout"
  phase tests cargo test --workspace --locked --features cistern/cluster
fi
# The REST API against schemas/openapi.json on the demo the tests built (target/debug/cistern):
# the role matrix, then schemathesis as viewer, operator and rule-author (the examples and the
# coverage phase: what they add to the admin's run is the 401s and 403s) and as admin (every
# phase). Bounded examples keep it under 4 minutes on 2 cores.
SCHEMATHESIS_NONADMIN_ARGS="--phases examples,coverage" phase schemathesis bash ops/schemathesis.sh target/debug/cistern --max-examples 5
# Fuzzing (fuzz/, ARCHITECTURE.md § Fuzzing): installs cargo-fuzz if missing, builds every target
# once and runs each for a bounded time from its committed corpus; a crash, a hang (10 s) or a
# memory blow-up (2 GB) fails CI and leaves the input in fuzz/artifacts/<target>/.
phase fuzz bash ops/fuzz.sh 10
echo "ops/test.sh: elapsed per phase: ${timings[*]} (total ${SECONDS} s)"

# The ScyllaDB backend's conformance suite needs a real cluster (none can be installed here).
# Without one it is skipped, and says so: a skipped run is never counted as a pass.
if [ -n "${CISTERN_SCYLLA_NODES:-}" ]; then
  echo "ScyllaDB conformance: running against ${CISTERN_SCYLLA_NODES}"
  cargo test --locked -p cistern --lib -- --ignored scylla_conformance
else
  echo "ScyllaDB conformance: SKIPPED (CISTERN_SCYLLA_NODES is unset) — not counted as a pass"
fi
