"""Independent TLS peers for Cistern's HTTPS API and for gateways on a mosquitto with mTLS:
Python's own `ssl` and `http.client`, and paho-mqtt (PyPI).

Run by tests/it/tls.rs, one JSON line on stdout per call:

  tls_peer.py https CA HOST PORT METHOD PATH [BODY] [--login USER PASSWORD] [--token T]
      -> {"status": N, "body": ..., "fingerprint": "<sha256 of the server certificate>",
          "token": "<the session, with --login>"}
         or {"error": "..."} when the TLS handshake or the connection failed
  tls_peer.py publish CA CERT KEY HOST PORT TOPIC PAYLOAD [CLIENT_ID]
      -> {"connected": true, "published": true}
         or {"connected": false, "error": "..."} when the broker refused the client
"""

import hashlib
import http.client
import json
import ssl
import sys
import threading

try:
    import paho.mqtt.client as mqtt
except ImportError as e:  # the peer is part of the test: its absence is a failure
    sys.exit(f"tls_peer.py needs paho-mqtt (pip install paho-mqtt): {e}")


def https(argv):
    ca, host, port, method, path = argv[:5]
    rest = argv[5:]
    body = None
    token = None
    login = None
    i = 0
    while i < len(rest):
        if rest[i] == "--login":
            login = (rest[i + 1], rest[i + 2])
            i += 3
        elif rest[i] == "--token":
            token = rest[i + 1]
            i += 2
        else:
            body = rest[i]
            i += 1
    ctx = ssl.create_default_context(cafile=ca)

    def call(method, path, body, token):
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body.encode("utf-8") if body else None, headers=headers)
        resp = conn.getresponse()
        der = conn.sock.getpeercert(binary_form=True)
        text = resp.read().decode("utf-8", "replace")
        conn.close()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return resp.status, parsed, hashlib.sha256(der).hexdigest()

    try:
        if login:
            status, answer, _ = call(
                "POST",
                "/api/v1/auth/login",
                json.dumps({"user": login[0], "password": login[1]}),
                None,
            )
            if status != 200:
                print(json.dumps({"error": f"login: {status} {answer}"}))
                return
            token = answer["token"]
        status, answer, fingerprint = call(method, path, body, token)
        out = {"status": status, "body": answer, "fingerprint": fingerprint}
        if login:
            out["token"] = token
        print(json.dumps(out))
    except (ssl.SSLError, OSError) as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))


def publish(argv):
    ca, cert, key, host, port, topic, payload = argv[:7]
    client_id = argv[7] if len(argv) > 7 else f"peer-{hashlib.sha256(cert.encode()).hexdigest()[:8]}"
    connected = threading.Event()
    outcome = {}

    def on_connect(client, userdata, flags, reason_code, properties=None):
        outcome["reason"] = str(reason_code)
        if not reason_code.is_failure:
            connected.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
    )
    client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
    client.on_connect = on_connect
    try:
        client.connect(host, int(port), keepalive=10)
    except (ssl.SSLError, OSError) as e:
        print(json.dumps({"connected": False, "error": f"{type(e).__name__}: {e}"}))
        return
    client.loop_start()
    if not connected.wait(10):
        client.loop_stop()
        print(json.dumps({"connected": False, "error": f"no CONNACK: {outcome}"}))
        return
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"connected": True, "published": info.is_published()}))


if __name__ == "__main__":
    {"https": https, "publish": publish}[sys.argv[1]](sys.argv[2:])
