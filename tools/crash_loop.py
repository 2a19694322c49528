#!/usr/bin/env python3
"""Crash safety, end to end: client processes run real code flows against `authledger serve` while the
server is killed with SIGKILL at random moments and restarted, again and again.

    tools/crash_loop.py --bin .build/debug [--cycles 20] [--clients 3] [--workdir DIR] [--store URL]

With --store, the server is a cluster node on that PostgreSQL journal (the key files stay in the work
directory); the checks run against the store. tools/soak runs it by turns on LMDB and on PostgreSQL.

After every restart it checks that `authledger-replay verify` and `rebuild --check` pass, that every code a
client received before the crash is still redeemable exactly once (or properly expired), that every code
redeemed before the crash is refused when presented again (the redemption was not lost), and that every
access token a client received still works at /userinfo. Prints one line per cycle and
'N passed, N failed' at the end; exits 1 on any failure.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import requests

from authledger_e2e import Server, ServerStartError, binaries, check_journal, log_in_and_consent, run_replay

TENANT = """tenant:
  issuer: http://127.0.0.1:{port}/
  code_ttl_seconds: 600
apis: []
clients:
  - client_id: web-app
    name: Crash Test App
    app_type: regular_web
    client_secret: s3cret
    redirect_uris: [https://client.example/callback]
    first_party: true
    connections: [Username-Password-Authentication]
connections:
  - name: Username-Password-Authentication
    users:
      - user_id: auth0|alice
        email: alice@example.com
        password: correct horse battery staple
"""
REDIRECT = "https://client.example/callback"


def get_code(base, session, state):
    query = urlencode({"response_type": "code", "client_id": "web-app", "redirect_uri": REDIRECT, "scope": "openid", "state": state})
    response = session.get(urljoin(base, "authorize?" + query), allow_redirects=False, timeout=5)
    response = log_in_and_consent(session, base, response, REDIRECT, username="alice@example.com",
                                  password="correct horse battery staple", timeout=5, limit=6)
    return parse_qs(urlparse(response.headers["Location"]).query)["code"][0]


def redeem(base, code):
    return requests.post(urljoin(base, "oauth/token"), auth=("web-app", "s3cret"), timeout=5, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})


class Client(threading.Thread):
    """Runs flows until the server goes away; remembers what the server acknowledged."""

    def __init__(self, base, number):
        super().__init__(daemon=True)
        self.base, self.number = base, number
        self.unredeemed, self.redeemed, self.tokens = [], [], []

    def run(self):
        session = requests.Session()
        count = 0
        while True:
            try:
                code = get_code(self.base, session, "c%d-%d" % (self.number, count))
                count += 1
                if random.random() < 0.5:
                    self.unredeemed.append(code)
                    continue
                response = redeem(self.base, code)
                if response.status_code == 200:
                    self.redeemed.append(code)
                    self.tokens.append(response.json()["access_token"])
                else:
                    self.unredeemed.append(code)  # refused only if the server was dying: check it later
            except Exception:  # noqa: BLE001 - the server was killed under us
                return


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--port", type=int, default=18777)
    parser.add_argument("--workdir")
    parser.add_argument("--store", help="a PostgreSQL store URL: run a cluster node on it instead of an LMDB journal")
    args = parser.parse_args()
    store = ["--store", args.store] if args.store else []
    workdir = args.workdir or tempfile.mkdtemp(prefix="authledger-crash-")
    journal = os.path.join(workdir, "journal")
    tenant = os.path.join(workdir, "tenant.yaml")
    with open(tenant, "w") as handle:
        handle.write(TENANT.format(port=args.port))
    authledger, replay = binaries(args.bin)
    subprocess.run([authledger, "tenant", "apply", tenant, "--journal", journal] + store, check=True, capture_output=True)

    passed = failed = 0
    pending_codes, spent_codes, tokens = [], [], []
    for cycle in range(1, args.cycles + 1):
        server = Server(authledger, journal, args.port, log_path=os.path.join(workdir, "serve-%d.log" % cycle), extra_args=store)
        try:
            server.start_healthy(timeout=15)
        except ServerStartError as error:
            server.kill()
            raise SystemExit(str(error))
        base = server.base
        problems = []
        # What the previous life of the server acknowledged must still hold.
        for code in pending_codes:
            response = redeem(base, code)
            if response.status_code == 200:
                spent_codes.append(code)
                tokens.append(response.json()["access_token"])
            elif response.json().get("error_description") != "The authorization code has expired.":
                problems.append("an acknowledged code could not be redeemed: %s" % response.text)
        pending_codes = []
        for code in spent_codes[-20:]:
            if redeem(base, code).status_code != 400:
                problems.append("a code redeemed before the crash was accepted again")
        for token in tokens[-20:]:
            status = requests.get(urljoin(base, "userinfo"), headers={"Authorization": "Bearer " + token}, timeout=5).status_code
            # Replaying a code revokes its tokens, so only tokens of codes not replayed above are checked.
            if status not in (200, 401):
                problems.append("userinfo answered %d" % status)
        spent_codes = spent_codes[-20:]
        tokens = []

        clients = [Client(base, number) for number in range(args.clients)]
        for client in clients:
            client.start()
        time.sleep(random.uniform(0.3, 1.2))
        server.stop(signal.SIGKILL)
        for client in clients:
            client.join(timeout=10)
            pending_codes += client.unredeemed
            spent_codes += client.redeemed
            tokens += client.tokens

        checks = check_journal(replay, journal) if not args.store else [
            ("verify", run_replay(replay, ["verify", "--store", args.store, "--journal", journal])),
            ("rebuild --check", run_replay(replay, ["rebuild", "--check", "--store", args.store, "--journal", journal]))]
        for _, result in checks:
            if result.returncode != 0:
                problems.append("%s failed after SIGKILL: %s%s" % (result.arguments[0], result.stdout[-300:], result.stderr[-300:]))
        status = "ok" if not problems else "FAILED: " + "; ".join(problems)
        print("cycle %d: killed after %d codes, %d redemptions: %s" % (
            cycle, sum(len(c.unredeemed) + len(c.redeemed) for c in clients), sum(len(c.redeemed) for c in clients), status))
        sys.stdout.flush()
        if problems:
            failed += 1
        else:
            passed += 1
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
