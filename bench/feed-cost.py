"""What the dashboard's live feed costs a decision over HTTP: sequential `POST /v1/decide`
over one keep-alive connection against a running `warden serve`, in rounds that alternate
between no event stream open and one open (a real SSE client reading as fast as it can).

    python3 bench/feed-cost.py [WARDEN_BIN] [REQUESTS_PER_ROUND] [ROUNDS]

Prints the mean time per decision request for each condition (median of the rounds). The
numbers include this Python client's own overhead, which is the same in both conditions."""

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/debug/warden"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 6
# QUIET_ONLY=1: only rounds with no stream (for a binary built without the feed, as a baseline).
QUIET_ONLY = os.environ.get("QUIET_ONLY") == "1"
EXTRA = os.environ.get("WARDEN_SERVE_ARGS", "--db w.db").split()
BODY = json.dumps({"agent": "bench", "action": "files.read", "args": {"path": "/tmp/x"}})


def main():
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "p.yaml"), "w").write('rules:\n  - action: "*"\n    allow: true\n')
        open(os.path.join(d, "op.token"), "w").write("operator-secret\n")
        serve = subprocess.Popen(
            [os.path.abspath(BIN), "serve", "--listen", "127.0.0.1:0", "-p", "p.yaml",
             "--operator-token-file", "op.token"] + EXTRA,
            cwd=d, stdout=subprocess.PIPE, text=True)
        try:
            host, port = serve.stdout.readline().split("//")[1].strip().split(":")
            run(host, int(port))
        finally:
            serve.terminate()
            serve.wait()


def decide_round(conn):
    started = time.perf_counter()
    for _ in range(N):
        conn.request("POST", "/v1/decide", BODY, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200
    return (time.perf_counter() - started) / N * 1e6


def listener(host, port, cookie, seen, ready):
    c = http.client.HTTPConnection(host, port)
    c.request("GET", "/dashboard/events", headers={"Cookie": cookie})
    r = c.getresponse()
    assert r.readline().startswith(b": open")
    ready.set()
    while seen[0] < N:  # every decision of the round, then hang up
        line = r.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            seen[0] += 1
    c.close()


def run(host, port):
    conn = http.client.HTTPConnection(host, port)
    conn.request("POST", "/dashboard/login", json.dumps({"token": "operator-secret"}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    decide_round(conn)  # warm-up
    quiet, watched = [], []
    for _ in range(ROUNDS):
        quiet.append(decide_round(conn))
        if QUIET_ONLY:
            continue
        seen, ready = [0], threading.Event()
        t = threading.Thread(target=listener, args=(host, port, cookie, seen, ready),
                             daemon=True)
        t.start()
        assert ready.wait(10)
        watched.append(decide_round(conn))
        t.join(timeout=30)
        assert seen[0] >= N, f"the stream saw {seen[0]} of {N} decisions"
        time.sleep(0.2)
    print(f"{N} requests x {ROUNDS} rounds, median of round means:")
    print(f"  no event stream open: {statistics.median(quiet):7.1f} us/request  (rounds: {', '.join(f'{x:.1f}' for x in quiet)})")
    if not QUIET_ONLY:
        print(f"  one stream open:      {statistics.median(watched):7.1f} us/request  (rounds: {', '.join(f'{x:.1f}' for x in watched)})")



if __name__ == "__main__":
    main()
