#!/usr/bin/env python3
"""HTTP benchmark of the running server with wrk, beside GET /healthz on the same server in the same run.

    tools/http/bench.py --bin .build/release [--seconds 10] [--connections 32]

1. GET /authorize for a logged-in user who already consented (session cookie): every request runs the full
   decision, issues a code and makes its events durable before the 302.
2. POST /oauth/token redeeming pre-issued codes:
   a. an EdDSA access token only (the audience of an API with signing_alg EdDSA, no openid: no ID token),
      beside GET /healthz;
   b. RS256 access and ID tokens (scope openid, no audience), beside GET /healthz and beside the raw
      RSA-2048 signing rate of all cores (`authledger-bench rsa-baseline`, same run): an exchange signs
      two JWTs, so its ceiling is half that rate.
Also: peak RSS of the server, journal bytes per authorize-and-token flow; and `verify` and `rebuild` of the
journal the run wrote (`authledger-bench replay --journal`): authorize-and-token flows, which decode at a
cost of their own, where `tools/bench replay` measures a journal of login failures.

The server runs on a fresh journal with a tenant file: the demo tenant (DemoTenant.swift: client demo-app,
user demo@example.com, API https://api.example.com) plus one API whose access tokens are EdDSA.
"""
import argparse
import base64
import json
import math
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
EDDSA_API = "https://eddsa.api.example.com"
GOALS = {"authorize": 0.35, "token_eddsa": 0.25, "token_rs256": 0.40}


def tenant(issuer):
    """The demo tenant of Sources/AuthCore/Tenant/DemoTenant.swift, plus an API whose access tokens are EdDSA."""
    return {
        "tenant": {"issuer": issuer},
        "apis": [
            {"identifier": "https://api.example.com", "name": "Example API", "scopes": ["read:messages", "write:messages"],
             "allow_offline_access": True, "skip_consent_for_first_party": True},
            {"identifier": EDDSA_API, "name": "EdDSA API", "scopes": ["read:messages"], "signing_alg": "EdDSA"},
        ],
        "clients": [
            {"client_id": "demo-app", "name": "Demo App", "app_type": "regular_web", "client_secret": "demo-secret",
             "token_endpoint_auth_method": "client_secret_post", "redirect_uris": [issuer + "callback"],
             "grant_types": ["authorization_code", "refresh_token"], "first_party": False,
             "connections": ["Username-Password-Authentication"]},
        ],
        "connections": [
            {"name": "Username-Password-Authentication",
             "users": [{"user_id": "auth0|demo", "email": "demo@example.com", "password": "correct horse battery staple"}]},
        ],
    }


def hidden(page, name):
    return re.search(r'name="%s" value="([^"]*)"' % name, page).group(1)


def login(session, scope="openid", audience=None, base=BASE):
    """Logs in (unless the session is) and consents (unless already) at the server at `base`; returns the
    /authorize query and a code."""
    parameters = {"response_type": "code", "client_id": "demo-app", "redirect_uri": REDIRECT, "scope": scope, "state": "s"}
    if audience:
        parameters["audience"] = audience
    query = urlencode(parameters)
    response = session.get(base + "authorize?" + query, allow_redirects=False)
    for _ in range(6):
        location = response.headers["Location"]
        if location.startswith(REDIRECT):
            return query, parse_qs(urlparse(location).query)["code"][0]
        if location.startswith("/login"):
            page = session.get(urljoin(base, location)).text
            response = session.post(base + "login", data={"state": hidden(page, "state"), "csrf": hidden(page, "csrf"),
                                                           "username": "demo@example.com", "password": "correct horse battery staple"}, allow_redirects=False)
        elif location.startswith("/consent"):
            page = session.get(urljoin(base, location)).text
            response = session.post(base + "consent", data={"state": hidden(page, "state"), "csrf": hidden(page, "csrf"), "action": "accept"},
                                    allow_redirects=False)
        else:
            response = session.get(urljoin(base, location), allow_redirects=False)
    raise SystemExit("login failed")


def wrk(arguments, environment=None):
    result = subprocess.run(["wrk"] + arguments, capture_output=True, text=True, env={**os.environ, **(environment or {})})
    return parse_wrk(result.stdout)


def parse_wrk(output):
    """(requests/s, p99 latency in ms, non-2xx/3xx responses, requests) from wrk's output."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)] if p99 else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    requests_done = re.search(r"(\d+) requests in", output)
    return rate, p99_ms, int(non2xx.group(1)) if non2xx else 0, int(requests_done.group(1)) if requests_done else 0


def issue_codes(query, cookie, args, path, count, rate, base=BASE):
    """About `count` codes from GET /authorize at the server at `base` under wrk (codes.lua; `rate`: the
    /authorize rate measured), interleaved in the order they were issued."""
    per_thread = int(math.ceil(count / args.threads))
    wrk(["-t", str(args.threads), "-c", str(args.connections), "-d", "%ds" % int(math.ceil(count / max(1, rate) * 1.2 + 1)),
         "-s", os.path.join(os.path.dirname(__file__), "codes.lua"), "-H", "Cookie: " + cookie, base + "authorize?" + query],
        {"CODES_FILE": path, "CODES_PER_THREAD": str(per_thread)})
    per_thread = []
    index = 0
    while os.path.exists("%s.%d" % (path, index)):
        with open("%s.%d" % (path, index)) as handle:
            per_thread.append(handle.read().split())
        index += 1
    codes = [code for row in zip(*per_thread) for code in row]
    codes += [code for column in per_thread for code in column[len(codes) // max(1, len(per_thread)):]]
    with open(path, "w") as handle:
        handle.write("\n".join(codes) + "\n")
    return len(codes)


def exchange(code, base=BASE):
    """One code exchange at the server at `base`; returns the JSON response."""
    return requests.post(base + "oauth/token", data={"grant_type": "authorization_code", "client_id": "demo-app",
                                                     "client_secret": "demo-secret", "redirect_uri": REDIRECT, "code": code}).json()


def jwt_alg(token):
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]


def rsa_baseline(bin_dir, seconds):
    output = subprocess.run([os.path.join(bin_dir, "authledger-bench"), "rsa-baseline", "--seconds", str(seconds)],
                            capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def cpu_seconds(pid):
    """User + system CPU time of a process so far, from /proc."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sealing_rate(bin_dir, journal):
    """Flows per second, one core, that sealing the personal values of the journal's last flow allows."""
    output = subprocess.run([os.path.join(bin_dir, "authledger-bench"), "sealing", "--journal", journal],
                            capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def replay_rates(bin_dir, journal):
    """(events, verify events/s, rebuild events/s) of `journal` (`authledger-bench replay --journal`)."""
    output = subprocess.run([os.path.join(bin_dir, "authledger-bench"), "replay", "--journal", journal, "--seconds", "1"],
                            capture_output=True, text=True, check=True).stdout
    events = int(re.search(r"(\d+) events", output).group(1))
    verify = float(re.search(r"\| authledger-replay verify[^|]*\| (\d+) \|", output).group(1))
    rebuild = float(re.search(r"\| authledger-replay rebuild[^|]*\| (\d+) \|", output).group(1))
    return events, verify, rebuild


def rss_now_mb(pid):
    """The server's resident memory now, by kind: anonymous (heap, stacks) and file-backed (mapped journal pages)."""
    kinds = {}
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                kinds[line.split(":")[0]] = int(line.split()[1]) / 1024
    return kinds


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
    parser.add_argument("--rsa-seconds", type=float, default=3, help="seconds per raw RSA signing measurement")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="authledger-http-bench-")
    journal = os.path.join(work, "journal")
    tenant_file = os.path.join(work, "tenant.json")
    with open(tenant_file, "w") as handle:
        json.dump(tenant(BASE), handle)
    server = subprocess.Popen([os.path.join(args.bin, "authledger"), "serve", "--journal", journal, "--port", str(PORT),
                               "--tenant", tenant_file],
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

        data_file = os.path.join(journal, "data.mdb")
        token_script = os.path.join(os.path.dirname(__file__), "token.lua")
        token_environment = {"REDIRECT_URI": quote(REDIRECT, safe=""), "WRK_THREADS": str(args.threads)}
        health = wrk(common + [BASE + "healthz"])
        size_before = os.path.getsize(data_file)
        cpu_before = cpu_seconds(server.pid)
        authorize = wrk(common + ["-H", "Cookie: " + cookie, BASE + "authorize?" + query])
        # The server's CPU time per /authorize (wrk runs on the same cores, so not cores / rate).
        cpu_per_authorize = (cpu_seconds(server.pid) - cpu_before) / max(1, authorize[3])
        bytes_per_authorize = (os.path.getsize(data_file) - size_before) / max(1, authorize[3] - authorize[2])

        # What the two token rows really sign: RS256 access + ID token; an EdDSA access token and no ID
        # token. These first exchanges also authenticate the client once: its secret is checked with
        # Argon2id (a bounded pool: beyond it, 503) and remembered, as for any client after its first
        # request, so the runs below measure exchanges, not a burst of 32 first-time secret checks.
        rs256 = exchange(login(session)[1])
        assert jwt_alg(rs256["access_token"]) == "RS256" and jwt_alg(rs256["id_token"]) == "RS256", rs256
        eddsa_query, eddsa_code = login(session, scope="read:messages", audience=EDDSA_API)
        eddsa = exchange(eddsa_code)
        assert jwt_alg(eddsa["access_token"]) == "EdDSA" and "id_token" not in eddsa, eddsa
        cookie = "; ".join("%s=%s" % (c.name, c.value) for c in session.cookies)

        # The raw RSA rate, with the server idle, in the same run.
        rsa = rsa_baseline(args.bin, args.rsa_seconds)

        # Codes for the token runs, issued the same way (kept, not redeemed), by wrk: as many as a run can
        # use (an RS256 exchange cannot outrun half the raw RSA rate), so all are well within their
        # 60-second lifetime when redeemed, and the journal does not grow more than needed.
        codes_file = os.path.join(work, "codes.txt")
        issued = issue_codes(query, cookie, args, codes_file,
                             count=min(authorize[0], rsa["signatures_per_second_all_cores"] / 2) * args.seconds * 1.3 + 500,
                             rate=authorize[0])
        size_before = os.path.getsize(data_file)
        token = wrk(common + ["-s", token_script, BASE + "oauth/token"], {"CODES_FILE": codes_file, **token_environment})
        bytes_per_exchange = (os.path.getsize(data_file) - size_before) / max(1, token[3] - token[2])
        # A complete flow: one /authorize (decision, code) and one code exchange (tokens).
        bytes_per_flow = bytes_per_authorize + bytes_per_exchange
        rss_rs256 = peak_rss_mb(server.pid)

        eddsa_codes = os.path.join(work, "eddsa-codes.txt")
        issued_eddsa = issue_codes(eddsa_query, cookie, args, eddsa_codes, count=authorize[0] * args.seconds * 1.6 + 500,
                                   rate=authorize[0])
        token_eddsa = wrk(common + ["-s", token_script, BASE + "oauth/token"], {"CODES_FILE": eddsa_codes, **token_environment})
        rss = peak_rss_mb(server.pid)
        memory = rss_now_mb(server.pid)
        journal_mb = os.path.getsize(data_file) / 2**20
        server.terminate()
        server.wait()
        sealing = sealing_rate(args.bin, journal)
        try:
            replay = replay_rates(args.bin, journal)
        except (subprocess.CalledProcessError, AttributeError, ValueError) as error:
            # Reported, not fatal: the HTTP figures above stand on their own.
            print("WARNING: verify and rebuild of the run's journal failed: %s" % error, file=sys.stderr)
            replay = None
    finally:
        if server.poll() is None:
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
    print("| POST /oauth/token, code exchange (EdDSA access token only: audience %s, no openid, no ID token) | %d | %.2f | %.2f ms | %d |" % (
        EDDSA_API, token_eddsa[0], token_eddsa[0] / health[0], token_eddsa[1], token_eddsa[2]))
    print("")
    print("Goals: /authorize at least %.2fx /healthz; the EdDSA exchange at least %.2fx /healthz." % (GOALS["authorize"], GOALS["token_eddsa"]))
    for name, run, codes in (("RS256", token, issued), ("EdDSA", token_eddsa, issued_eddsa)):
        if run[2]:
            print("WARNING: %d of %d %s exchanges failed (%d codes were issued): that row is not valid." % (run[2], run[3], name, codes))
        elif run[3] > codes:
            print("WARNING: %d %s exchanges, only %d codes: that row is not valid." % (run[3], name, codes))
    all_cores, one_core = rsa["signatures_per_second_all_cores"], rsa["signatures_per_second_one_core"]
    half = all_cores / 2
    print("")
    print("RS256 exchange beside raw RSA-2048 signing (PKCS#1 v1.5, SHA-256, swift-crypto _RSA: the primitive of the RS256 tokens), %d cores, %g s each:" % (
        rsa["cores"], rsa["seconds"]))
    print("")
    print("| measurement | rate (/s) | vs half the raw RSA rate, all cores |")
    print("|---|---:|---:|")
    print("| raw RSA-2048 signing, 1 core | %d | %.2f |" % (one_core, one_core / half))
    print("| raw RSA-2048 signing, all cores | %d | %.2f |" % (all_cores, all_cores / half))
    print("| half the raw all-core rate (baseline: an exchange signs two JWTs) | %d | 1.00 |" % half)
    print("| POST /oauth/token, RS256 code exchange (two RSA signatures: access + ID token) | %d | %.2f |" % (token[0], token[0] / half))
    print("")
    print("Goal: the RS256 exchange at least %.2fx half the raw all-core RSA rate." % GOALS["token_rs256"])
    print("")
    print("peak RSS of the server: %.0f MB (%.0f MB after rows 1 and 2b, before 2a; at the end %.0f MB anonymous, %.0f MB file-backed: "
          "mapped journal pages, data.mdb %.0f MB)" % (rss, rss_rs256, memory.get("RssAnon", 0), memory.get("RssFile", 0), journal_mb))
    print("journal growth: about %.0f bytes per authorize-and-token flow = %.0f per /authorize + %.0f per "
          "RS256 code exchange (growth of data.mdb, with projections and indexes, over each run / its successful requests)" % (
              bytes_per_flow, bytes_per_authorize, bytes_per_exchange))
    print("Goals: peak RSS below 150 MB; below 2048 bytes of journal per authorize-and-token flow.")
    seal_ms = 1000.0 / max(1, sealing["flows_per_second_one_core"])
    print("")
    print("| measurement | CPU per flow or request | vs one GET /authorize |")
    print("|---|---:|---:|")
    print("| GET /authorize, logged in and consented (server CPU time / requests, same run) | %.3f ms | 1.00 |" % (cpu_per_authorize * 1000))
    print("| sealing the personal values of one authorize-and-token flow (%d of its %d events; `authledger-bench sealing`) | %.3f ms | %.3f |" % (
        sealing["sealed_events"], sealing["events"], seal_ms, seal_ms / 1000.0 / max(1e-9, cpu_per_authorize)))
    print("")
    print("Goal: sealing a flow's personal data costs under 0.10x one /authorize.")
    print("")
    if replay is None:
        print("verify and rebuild of the flows' journal: not measured (see the warning above)")
        return 0
    print("| this run's journal: %d events of authorize-and-token flows (`authledger-bench replay --journal`) | events/s |" % replay[0])
    print("|---|---:|")
    print("| verify of the flows' journal (signatures, chain, Merkle, checkpoints) | %d |" % replay[1])
    print("| rebuild of the flows' journal (every projection) | %d |" % replay[2])
    print("")
    print("(No goal: the rebuild goal is measured by `tools/bench replay`, on login failures; these events decode at a cost of their own.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
