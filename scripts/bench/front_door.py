"""The front door under attack, measured (scripts/bench/front-door runs it).

usage: front_door.py WORKER_URL WORKER_PID BALANCER_URL CONTROL_API TOKEN
"""
import concurrent.futures as cf
import json
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib

WORKER, PID, LB, API, TOKEN = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
LB_HOST, LB_PORT = LB.removeprefix("http://").rsplit(":", 1)
LB_ADDR = (LB_HOST, int(LB_PORT))


def png(w=64, h=48):
    """A small grey PNG that decodes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes((x * 4) % 256 for x in range(w)) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = png()


def post_upload(base, username, password, client=None):
    boundary = "bench-front-door"
    parts = []
    for name, value in (("username", username), ("password", password)):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n'
                 f"Content-Type: image/png\r\n\r\n".encode() + PNG + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(base + "/api/upload", data=b"".join(parts), method="POST")
    req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    if client:
        req.add_header("X-Forwarded-For", client)
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            return res.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return "connection error"


def register(base, username, password):
    data = f"username={username}&password={password}".encode()
    with urllib.request.urlopen(urllib.request.Request(base + "/api/register", data=data), timeout=60) as res:
        assert res.status == 200


def rss_mb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


class PeakRss:
    def __init__(self):
        self.peak, self.running = rss_mb(), True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.02)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak


def counts(results):
    out = {}
    for r in results:
        out[r] = out.get(r, 0) + 1
    return " · ".join(f"{k}: {v}" for k, v in sorted(out.items(), key=lambda kv: str(kv[0])))


print(f"worker RSS at rest: {rss_mb()} MB")
register(WORKER, "victim", "the-right-pass")

# 1. One client guessing one account: 96 wrong passwords, 48 at a time.
start = time.monotonic()
peak = PeakRss()
with cf.ThreadPoolExecutor(48) as pool:
    results = list(pool.map(lambda i: post_upload(WORKER, "victim", f"guess-{i}-pw", "192.0.2.1"), range(96)))
took = time.monotonic() - start
print(f"96 wrong passwords for one account from one client, 48 at a time: {counts(results)} in {took:.1f} s; "
      f"peak worker RSS {peak.stop()} MB")
start = time.monotonic()
owner = post_upload(WORKER, "victim", "the-right-pass", "198.51.100.7")
print(f"  then the right password from a client that had not failed: {owner} in {(time.monotonic() - start) * 1000:.0f} ms")
print(f"  and from the guessing client: {post_upload(WORKER, 'victim', 'the-right-pass', '192.0.2.1')}")

# 2. 500 wrong logins at once from 500 clients for 500 accounts: only the hashing pool bounds it.
peak = PeakRss()
start = time.monotonic()
with cf.ThreadPoolExecutor(500) as pool:
    results = list(pool.map(lambda i: post_upload(WORKER, f"user{i}", "wrong-pass-1", f"10.{i // 250}.{i % 250}.9"), range(500)))
took = time.monotonic() - start
print(f"500 wrong logins at once, 500 clients, 500 accounts: {counts(results)} in {took:.1f} s; "
      f"peak worker RSS {peak.stop()} MB")


# 3. The balancer: stalled request heads and stalled bodies.
def open_stalled(payload, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(LB_ADDR)
        s.sendall(payload)
        s.settimeout(0.0)
        socks.append(s)
    return socks


def closed(socks):
    n = 0
    for s in socks:
        try:
            data = s.recv(4096)
            if data == b"" or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.1 503"):
                n += 1
        except BlockingIOError:
            pass
        except OSError:
            n += 1
    return n


heads = open_stalled(b"GET / HTTP/1.1\r\nHost: gallery\r\nX-Slow: ", 200)
bodies = open_stalled(b"POST /api/upload HTTP/1.1\r\nHost: gallery\r\nContent-Length: 10000000\r\n"
                      b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n", 50)
start = time.monotonic()
for wait in (5, 15, 35):
    time.sleep(max(0, wait - (time.monotonic() - start)))
    print(f"after {wait:>2} s: {closed(heads)} of 200 stalled request heads and "
          f"{closed(bodies)} of 50 stalled uploads closed by the balancer")
for s in heads + bodies:
    s.close()

# 4. Past the connection limit.
limit_socks = []
refused = 0
for _ in range(400):
    s = socket.create_connection(LB_ADDR)
    limit_socks.append(s)
time.sleep(1)
for s in limit_socks:
    s.settimeout(0.0)
    try:
        if s.recv(4096).startswith(b"HTTP/1.1 503"):
            refused += 1
    except BlockingIOError:
        pass
print(f"400 idle connections against a limit of 300: {refused} answered 503 at once")
for s in limit_socks:
    s.close()

req = urllib.request.Request(API + "/status", headers={"Authorization": f"Bearer {TOKEN}"})
with urllib.request.urlopen(req, timeout=30) as res:
    print("balancer counts (/status front_door):", json.dumps(json.load(res)["front_door"]))
