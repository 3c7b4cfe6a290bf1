#!/usr/bin/env bash
# Boots one of the shipped etcd topologies on this machine's loopback and checks what
# ops/cluster/README.md relies on:
#   1. every member starts from its file of ops/cluster/etcd/<topology>/ (addresses rewritten to
#      127.0.0.1 and free ports, certificates from a throw-away CA, data in a temporary
#      directory; everything else — timing, TLS for peers and clients, compaction, quota — as
#      shipped); a client without a certificate of the CA is refused;
#   2. a lease asked with TTL 1 s is granted with etcd's minimum, ceil(1.5 × election timeout);
#   3. with dc1's members killed (dc1 cut off), the rest — dc2 and the witness — still elect a
#      leader and accept writes and lease grants: the surviving side can take every shard;
#   4. a member left alone (a minority) refuses them: a site without the majority can own nothing;
#   and that etcd accepts HTTP/2 pings every second (the nodes' client) without GOAWAY.
#
#   ops/cluster/try-etcd.sh three-members    # or five-members
#   HEARTBEAT=50 ELECTION=500 LEASE_TTL=2 ops/cluster/try-etcd.sh three-members   # other timing
#
# Step 3 also measures when the cut-off side's lease expires: the owner key of a node of the cut-off
# data centre, renewed just before the cut, is deleted by the surviving majority.
#
# Needs Debian's etcd-server (/usr/bin/etcd), curl and openssl. Uses ports 24000-24100.
set -euo pipefail
topology=${1:-three-members}
here=$(cd "$(dirname "$0")" && pwd)
src=$here/etcd/$topology
[ -d "$src" ] || { echo "no topology $src" >&2; exit 2; }
work=$(mktemp -d /tmp/cistern-try-etcd.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

for port in $(seq 24000 10 24040); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null; then
    echo "port $port or $((port + 1)) is in use (an etcd of an earlier run still stopping?)" >&2
    exit 2
  fi
done

# A CA and one peer certificate per member, for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=cistern-try-ca \
  -keyout "$work/ca.key" -out "$work/peer-ca.crt" 2>/dev/null
files=("$src"/*.yml)
declare -A client_port
i=0
for f in "${files[@]}"; do
  name=$(basename "$f" .yml)
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$work/$name-peer.key" \
    -out "$work/$name.csr" 2>/dev/null
  openssl x509 -req -in "$work/$name.csr" -CA "$work/peer-ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -days 1 -out "$work/$name-peer.crt" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n') 2>/dev/null
  client_port[$name]=$((24000 + 10 * i))
  i=$((i + 1))
done
# The client certificate of a node ([cluster.etcd_tls] cert), for the checks below.
openssl req -newkey rsa:2048 -nodes -subj "/CN=cistern-node" -keyout "$work/node.key" \
  -out "$work/node.csr" 2>/dev/null
openssl x509 -req -in "$work/node.csr" -CA "$work/peer-ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -out "$work/node.crt" -extfile <(printf 'extendedKeyUsage=clientAuth\n') 2>/dev/null
curl() { command curl --cacert "$work/peer-ca.crt" --cert "$work/node.crt" --key "$work/node.key" "$@"; }

# Rewrite every member's address (the shipped IPs) to 127.0.0.1 with its own ports.
rewrite=()
i=0
for f in "${files[@]}"; do
  ip=$(sed -n 's#^listen-peer-urls: https://\([0-9.]*\):2380$#\1#p' "$f")
  cp=$((24000 + 10 * i))
  rewrite+=(-e "s#https://$ip:2380#https://127.0.0.1:$((cp + 1))#g" -e "s#https://$ip:2379#https://127.0.0.1:$cp#g")
  i=$((i + 1))
done
for f in "${files[@]}"; do
  name=$(basename "$f" .yml)
  sed "${rewrite[@]}" \
    -e "s#,https://127.0.0.1:2379##" \
    -e "s#^data-dir: [^ ]*#data-dir: $work/$name.data#" \
    -e "s#/etc/etcd/pki/#$work/#" \
    "$f" > "$work/$name.yml"
  # The checks below use etcd's JSON gateway, which a config file leaves off (etcd 3.4).
  echo "enable-grpc-gateway: true" >> "$work/$name.yml"
  [ -z "${HEARTBEAT:-}" ] || sed -i "s/^heartbeat-interval: [0-9]*/heartbeat-interval: $HEARTBEAT/" "$work/$name.yml"
  [ -z "${ELECTION:-}" ] || sed -i "s/^election-timeout: [0-9]*/election-timeout: $ELECTION/" "$work/$name.yml"
  /usr/bin/etcd --config-file "$work/$name.yml" > "$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$(echo "$name" | tr - _)=$!"
done

url() { echo "https://127.0.0.1:${client_port[$1]}"; }
names=()
for f in "${files[@]}"; do names+=("$(basename "$f" .yml)"); done
first=${names[0]}
last=${names[${#names[@]} - 1]}

healthy() { curl -s -m 2 "$(url "$1")/health" | grep -q '"health":"true"'; }
deadline=$((SECONDS + 30))
for n in "${names[@]}"; do
  until healthy "$n"; do
    [ $SECONDS -lt $deadline ] || { echo "FAIL: $n not healthy"; tail -5 "$work/$n.log"; exit 1; }
    sleep 0.2
  done
done
if command curl -s -m 2 --cacert "$work/peer-ca.crt" "$(url "$first")/health" | grep -q health; then
  echo "FAIL: a client without a certificate was answered"; exit 1
fi
echo "1. ${#names[@]} members healthy from ops/cluster/etcd/$topology (TLS for peers and clients on; a client without a certificate refused)"

ttl=$(curl -s -m 5 -X POST "$(url "$last")/v3/lease/grant" -d '{"TTL":1}' | sed -n 's/.*"TTL":"\([0-9]*\)".*/\1/p')
election=$(sed -n 's/^election-timeout: \([0-9]*\).*/\1/p' "$work/$first.yml")
echo "2. lease asked with TTL 1 s granted with TTL ${ttl} s (election timeout ${election} ms)"

# The nodes' client pings their connection every second (HTTP/2 PING); etcd must not answer
# with GOAWAY too_many_pings (grpc-keepalive-min-time). A raw HTTP/2 connection (TLS, ALPN h2,
# the node's client certificate) with an open Watch
# stream on which etcd sends nothing, pinged every second for 8 s.
python3 - 127.0.0.1 "${client_port[$first]}" "$work" <<'PY' || { echo "FAIL: etcd refused 1-s pings"; exit 1; }
import select, socket, ssl, struct, sys, time
def frame(t, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload
def lit(n, v):
    return b"\x00" + bytes([len(n)]) + n.encode() + bytes([len(v)]) + v.encode()
host, port, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tls = ssl.create_default_context(cafile=f"{work}/peer-ca.crt")
tls.load_cert_chain(f"{work}/node.crt", f"{work}/node.key")
tls.set_alpn_protocols(["h2"])
s = tls.wrap_socket(socket.create_connection((host, port)), server_hostname=host)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
h = [(":method", "POST"), (":scheme", "https"), (":path", "/etcdserverpb.Watch/Watch"),
     (":authority", f"{host}:{port}"), ("content-type", "application/grpc"), ("te", "trailers")]
s.sendall(frame(1, 4, 1, b"".join(lit(k, v) for k, v in h)))
start, nxt, buf, acks = time.time(), time.time() + 1, b"", 0
while time.time() - start < 8.5:
    if s.pending() or select.select([s], [], [], max(0, nxt - time.time()))[0]:
        d = s.recv(65536)
        if not d:
            sys.exit("connection closed")
        buf += d
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n, t, fl = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
            p, buf = buf[9:9 + n], buf[9 + n:]
            if t == 4 and not fl & 1:
                s.sendall(frame(4, 1, 0, b""))
            if t == 6 and fl & 1:
                acks += 1
            if t == 7:
                sys.exit(f"GOAWAY {p[8:]!r}")
    if time.time() >= nxt:
        s.sendall(frame(6, 0, 0, struct.pack(">Q", acks)))
        nxt += 1
print(f"   {acks} pings at 1 s answered, no GOAWAY")
PY

# Cut off the data centre that holds the leader (dc1 when the witness leads): kill its members.
leader_id=$(curl -s -m 3 -X POST "$(url "$first")/v3/maintenance/status" -d '{}' | sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p')
cut=dc1
for n in "${names[@]}"; do
  id=$(curl -s -m 3 -X POST "$(url "$n")/v3/maintenance/status" -d '{}' | sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p')
  if [ "$id" = "$leader_id" ]; then
    echo "   leader: $n"
    case $n in *dc2*) cut=dc2;; esac
  fi
done
# A node of the data centre about to be cut off holds a lease (LEASE_TTL, 3 s by default) with a shard's owner key on
# it, renewed one last time just before the cut (the node's last answered keep-alive).
key=$(printf /cistern/try | base64)
okey=$(printf /cistern/try/shards/00/owner | base64)
lease=$(curl -s -m 3 -X POST "$(url "$first")/v3/lease/grant" -d "{\"TTL\":${LEASE_TTL:-3}}" | sed -n 's/.*"ID":"\([0-9]*\)".*/\1/p')
curl -s -m 3 -X POST "$(url "$first")/v3/kv/put" -d "{\"key\":\"$okey\",\"value\":\"$key\",\"lease\":\"$lease\"}" >/dev/null
curl -s -m 3 -X POST "$(url "$first")/v3/lease/keepalive" -d "{\"ID\":\"$lease\"}" >/dev/null
renewed=$(date +%s%N)
for n in "${names[@]}"; do
  case $n in *$cut*) p=pid_$(echo "$n" | tr - _); kill -9 "${!p}"; echo "   killed $n ($cut cut off)";; esac
done
put_ok() { curl -s -m 0.5 -X POST "$(url "$1")/v3/kv/put" -d "{\"key\":\"$key\",\"value\":\"$key\"}" | grep -q '"revision"'; }
deadline=$((SECONDS + 20))
start=$(date +%s%N)
until put_ok "$last"; do
  [ $SECONDS -lt $deadline ] || { echo "FAIL: the majority without $cut accepts no write"; exit 1; }
  sleep 0.05
done
took=$((($(date +%s%N) - start) / 1000000))
grant=$(curl -s -m 5 -X POST "$(url "$last")/v3/lease/grant" -d '{"TTL":3}')
echo "$grant" | grep -q '"ID"' || { echo "FAIL: no lease grant without $cut: $grant"; exit 1; }
echo "3. without $cut: writes and lease grants accepted by the rest (first write after ${took} ms)"
owned() { curl -s -m 0.5 -X POST "$(url "$last")/v3/kv/range" -d "{\"key\":\"$okey\"}" | grep -q '"kvs"'; }
deadline=$((SECONDS + 20))
while owned; do
  [ $SECONDS -lt $deadline ] || { echo "FAIL: the cut-off node's owner key outlived 20 s"; exit 1; }
  sleep 0.05
done
echo "   the cut-off node's owner key (lease TTL ${LEASE_TTL:-3} s) deleted $((($(date +%s%N) - renewed) / 1000000)) ms after its last renewal"

# Leave one member alone.
for n in "${names[@]}"; do
  [ "$n" = "$last" ] && continue
  case $n in *$cut*) continue;; esac
  p=pid_$(echo "$n" | tr - _); kill -9 "${!p}"
done
sleep 3
if put_ok "$last"; then echo "FAIL: a lone member accepted a write"; exit 1; fi
echo "4. $last alone (a minority): writes refused (timed out)"
echo "OK"
