#!/usr/bin/env python3
"""HTTP benchmark of the running server with wrk, beside GET /healthz on the same server in the same run.

    tools/http/bench.py --bin .build/release [--seconds 10] [--connections 32]

1. GET /authorize for a logged-in user who already consented (session cookie): every request runs the full
   decision, issues a code and makes its events durable before the 302.
2. POST /oauth/token redeeming pre-issued codes (RS256 access and ID tokens).
Also: peak RSS of the server, journal bytes per authorize-and-token flow.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlparse

import requests

PORT = 18666
BASE = "http://127.0.0.1:%d/" % PORT
REDIRECT = BASE + "callback"


def hidden(page, name):
    return re.search(r'name="%s" value="([^"]*)"' % name, page).group(1)


def login(session):
    query = urlencode({"response_type": "code", "client_id": "demo-app", "redirect_uri": REDIRECT, "scope": "openid", "state": "s"})
    response = session.get(BASE + "authorize?" + query, allow_redirects=False)
    for _ in range(6):
        location = response.headers["Location"]
        if location.startswith(REDIRECT):
            return query, parse_qs(urlparse(location).query)["code"][0]
        if location.startswith("/login"):
            page = session.get(urljoin(BASE, location)).text
            response = session.post(BASE + "login", data={"state": hidden(page, "state"), "csrf": hidden(page, "csrf"),
                                                           "username": "demo@example.com", "password": "correct horse battery staple"}, allow_redirects=False)
        elif location.startswith("/consent"):
            page = session.get(urljoin(BASE, location)).text
            response = session.post(BASE + "consent", data={"state": hidden(page, "state"), "csrf": hidden(page, "csrf"), "action": "accept"},
                                    allow_redirects=False)
        else:
            response = session.get(urljoin(BASE, location), allow_redirects=False)
    raise SystemExit("login failed")


def wrk(arguments, environment=None):
    result = subprocess.run(["wrk"] + arguments, capture_output=True, text=True, env={**os.environ, **(environment or {})})
    output = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)] if p99 else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rate, p99_ms, int(non2xx.group(1)) if non2xx else 0


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="authledger-http-bench-")
    journal = os.path.join(work, "journal")
    server = subprocess.Popen([os.path.join(args.bin, "authledger"), "serve", "--journal", journal, "--port", str(PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if requests.get(BASE + "healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        session = requests.Session()
        query, _ = login(session)
        cookie = "; ".join("%s=%s" % (c.name, c.value) for c in session.cookies)
        common = ["-t", str(args.threads), "-c", str(args.connections), "-d", "%ds" % args.seconds, "--latency"]

        health = wrk(common + [BASE + "healthz"])
        size_before = os.path.getsize(os.path.join(journal, "data.mdb"))
        authorize = wrk(common + ["-H", "Cookie: " + cookie, BASE + "authorize?" + query])

        # Codes for the token benchmark, issued the same way (kept, not redeemed).
        codes_file = os.path.join(work, "codes.txt")
        with open(codes_file, "w") as handle:
            needed = int(authorize[0] * args.seconds * 1.5) + 1000
            issued = 0
            while issued < needed:
                location = session.get(BASE + "authorize?" + query, allow_redirects=False).headers["Location"]
                handle.write(parse_qs(urlparse(location).query)["code"][0] + "\n")
                issued += 1
                if issued >= 20000:
                    break
        token = wrk(common + ["-s", os.path.join(os.path.dirname(__file__), "token.lua"), BASE + "oauth/token"],
                    {"CODES_FILE": codes_file, "REDIRECT_URI": quote(REDIRECT, safe=""), "WRK_THREADS": str(args.threads)})
        flows = max(1, int(authorize[0] * args.seconds))
        bytes_per_flow = (os.path.getsize(os.path.join(journal, "data.mdb")) - size_before) / flows
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    print("HTTP benchmark: %d connections, %d wrk threads, %d s each" % (args.connections, args.threads, args.seconds))
    print("")
    print("| measurement | requests/s | vs GET /healthz | p99 latency | non-2xx/3xx |")
    print("|---|---:|---:|---:|---:|")
    print("| GET /healthz (baseline) | %d | 1.00 | %.2f ms | %d |" % (health[0], health[1], health[2]))
    print("| GET /authorize, logged in and consented: decision + durable events + code | %d | %.2f | %.2f ms | %d |" % (
        authorize[0], authorize[0] / health[0], authorize[1], authorize[2]))
    print("| POST /oauth/token, code exchange (RS256 access + ID token) | %d | %.2f | %.2f ms | %d |" % (
        token[0], token[0] / health[0], token[1], token[2]))
    print("")
    print("peak RSS of the server: %.0f MB; journal growth: about %.0f bytes per /authorize (data.mdb, with projections and indexes)" % (
        rss, bytes_per_flow))
    return 0


if __name__ == "__main__":
    sys.exit(main())
