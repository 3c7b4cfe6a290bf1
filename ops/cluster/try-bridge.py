#!/usr/bin/env python3
"""Boots the two brokers of ops/cluster/mosquitto/ on this machine's loopback (addresses, paths and
passwords rewritten; queues, persistence and the bridge as shipped) and checks what
ops/cluster/README.md says about them:

1. telemetry published at either broker reaches a shard's session at the other exactly once
   (both directions, no echo through the bridge);
2. dc1 cut off (its broker stopped): what the field publishes at dc2 meanwhile waits in the
   bridge's session at dc2 and reaches dc1's shard session when dc1 is back;
3. the other way round, dc2 cut off: dc1 queues for the bridge and delivers on return;
4. a shard's session left behind on a broker (the shard now owned in the other data centre)
   keeps queueing its rooms' messages: resumed later, it delivers them again (duplicates).

    python3 ops/cluster/try-bridge.py

Needs Debian's mosquitto (/usr/sbin/mosquitto, mosquitto_passwd) and python3-paho-mqtt (2.x).
Uses ports 24101 and 24102.
"""

import getpass
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

HERE = os.path.dirname(os.path.abspath(__file__))
PORTS = {"dc1": 24101, "dc2": 24102}
IPS = {"dc1": "10.1.0.31", "dc2": "10.2.0.31"}
USERS = {"cistern-bridge": "change-me", "node": "node-pw", "gateway": "gateway-pw"}
ROOM = "XM-0007"
SHARD = "cistern-xiamen-shard-07"


def rewrite(dc, work):
    text = open(os.path.join(HERE, "mosquitto", f"mqtt-{dc}.conf")).read()
    for other, ip in IPS.items():
        text = text.replace(f"listener 1883 {ip}", f"listener {PORTS[other]} 127.0.0.1")
        text = text.replace(f"address {ip}:1883", f"address 127.0.0.1:{PORTS[other]}")
    text = text.replace("/var/lib/mosquitto/", f"{work}/{dc}/")
    text = text.replace("/etc/mosquitto/cistern.passwd", f"{work}/passwd")
    assert "10." not in re.sub(r"#.*", "", text), "an address was not rewritten"
    # Started as root, mosquitto would switch to the user mosquitto, who cannot read the work
    # directory: stay who we are.
    text += f"\nuser {getpass.getuser()}\n"
    os.makedirs(f"{work}/{dc}", exist_ok=True)
    path = f"{work}/mqtt-{dc}.conf"
    open(path, "w").write(text)
    return path


class Broker:
    def __init__(self, dc, conf, work):
        self.dc, self.conf, self.work, self.proc = dc, conf, work, None

    def start(self):
        log = open(f"{self.work}/{self.dc}.log", "a")
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", self.conf], stdout=log, stderr=log)
        deadline = time.time() + 10
        while time.time() < deadline:
            c = client("probe-" + self.dc, clean=True)
            try:
                c.connect("127.0.0.1", PORTS[self.dc])
                c.disconnect()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"FAIL: broker {self.dc} did not start")

    def stop(self):
        self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
        self.proc.wait(10)


def client(cid, clean):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=clean)
    c.username_pw_set("node", USERS["node"])
    return c


class Session:
    """A shard's persistent session: clean session off, QoS 1, the room's two topics."""

    def __init__(self, dc):
        self.dc, self.got, self.lock = dc, [], threading.Lock()
        self.c = client(SHARD, clean=False)
        self.subscribed = threading.Event()
        self.c.on_connect = self.on_connect
        self.c.on_message = self.on_message
        self.c.on_subscribe = lambda *a: self.subscribed.set()

    def on_connect(self, c, userdata, flags, reason, props):
        c.subscribe([(f"cistern/v1/telemetry/{ROOM}", 1), (f"cistern/v1/telemetry/{ROOM}/+", 1)])

    def on_message(self, c, userdata, msg):
        with self.lock:
            self.got.append(msg.payload.decode())

    def open(self):
        self.subscribed.clear()
        self.c.connect("127.0.0.1", PORTS[self.dc])
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise SystemExit(f"FAIL: no subscription at {self.dc}")

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def wait_for(self, payloads, settle=1.5):
        deadline = time.time() + 20
        while time.time() < deadline:
            with self.lock:
                if all(p in self.got for p in payloads):
                    break
            time.sleep(0.05)
        time.sleep(settle)  # anything that would arrive twice arrives now
        with self.lock:
            return list(self.got)


def publish(dc, topic, payload):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gw-{dc}-{payload}", clean_session=True)
    c.username_pw_set("gateway", USERS["gateway"])
    c.connect("127.0.0.1", PORTS[dc])
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def bridge_up(timeout=30):
    """Waits for the bridge's notification (retained, 1 = connected) at dc2."""
    up = threading.Event()
    c = client("probe-bridge", clean=True)
    c.on_connect = lambda c, *a: c.subscribe("cistern/v1/bridge/dc1-dc2/state", 1)
    c.on_message = lambda c, u, m: up.set() if m.payload == b"1" else None
    c.connect("127.0.0.1", PORTS["dc2"])
    c.loop_start()
    ok = up.wait(timeout)
    c.disconnect()
    c.loop_stop()
    if not ok:
        raise SystemExit("FAIL: the bridge did not come up")


def expect(name, got, want):
    if sorted(got) != sorted(want):
        raise SystemExit(f"FAIL: {name}: got {got}, want {want}")
    print(f"   {name}: {got}")


def main():
    for port in PORTS.values():
        try:
            import socket

            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            raise SystemExit(f"port {port} is in use")
        except OSError:
            pass
    work = tempfile.mkdtemp(prefix="cistern-try-bridge.")
    brokers = {}
    try:
        first = True
        for user, pw in USERS.items():
            args = ["mosquitto_passwd", "-b"] + (["-c"] if first else []) + [f"{work}/passwd", user, pw]
            subprocess.run(args, check=True, capture_output=True)
            first = False
        os.chmod(f"{work}/passwd", 0o600)
        for dc in ("dc2", "dc1"):
            brokers[dc] = Broker(dc, rewrite(dc, work), work)
            brokers[dc].start()
        bridge_up()
        print("0. both brokers up from ops/cluster/mosquitto, bridge connected")

        # The shard's session at dc1 (its owner is in dc1) and one left at dc2 from an earlier
        # ownership there.
        s1, s2 = Session("dc1"), Session("dc2")
        s2.open()
        s2.close()
        s1.open()
        publish("dc2", f"cistern/v1/telemetry/{ROOM}", "A")
        publish("dc1", f"cistern/v1/telemetry/{ROOM}/P1", "B")
        print("1. published A at dc2 and B at dc1:")
        expect("dc1's shard session received", s1.wait_for(["A", "B"]), ["A", "B"])

        s1.close()
        brokers["dc1"].stop()
        publish("dc2", f"cistern/v1/telemetry/{ROOM}", "C")
        brokers["dc1"].start()
        bridge_up()
        s1 = Session("dc1")
        s1.open()
        print("2. dc1 stopped, C published at dc2, dc1 back:")
        expect("dc1's shard session, resumed, received", s1.wait_for(["C"]), ["C"])

        brokers["dc2"].stop()
        publish("dc1", f"cistern/v1/telemetry/{ROOM}", "D")
        brokers["dc2"].start()
        bridge_up()
        print("3. dc2 stopped, D published at dc1, dc2 back (D checked in 4.)")
        print("4. the session left at dc2 since before A, resumed:")
        s2 = Session("dc2")
        s2.open()
        expect("dc2's left-behind shard session received", s2.wait_for(["A", "B", "C", "D"]), ["A", "B", "C", "D"])
        s1.close()
        s2.close()
        print("OK")
    finally:
        for b in brokers.values():
            if b.proc and b.proc.poll() is None:
                b.stop()
        if os.environ.get("KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
