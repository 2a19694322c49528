#!/usr/bin/env python3
"""I/O errors under the journal: while the disk fails, nothing is issued; when it heals, the server recovers.

    python3 tools/io_fault_test.py --bin .build/debug

The server runs with tools/faults/eio.c preloaded (built here with gcc): while a trigger file exists,
fsync and fdatasync fail with EIO, as a failing device would make them. The test

1. logs the demo user in, gets a code and redeems it (the healthy path), and gets a second code that it
   keeps for later;
2. makes the device fail, then asks for codes by SSO and tries to redeem the kept code: every answer
   must be 503 or `temporarily_unavailable`, and no code may come back;
3. heals the device, and checks that the server recovers by itself: a code comes back again, and the
   kept code (whose redemption could not be recorded) is still redeemable, once;
4. stops the server and checks the journal: `verify` and `rebuild --check` pass, and it holds exactly
   the codes and token grants the client received — nothing that was answered with an error.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from authledger_e2e import CLIENT_ID, CLIENT_SECRET, Server, ServerStartError, binaries, check_journal, install_missing
from authledger_e2e import demo_redirect_uri, log_in_and_consent, run_replay

install_missing([("requests", "requests")])
import requests  # noqa: E402 - installed just above when missing

SHIM_SOURCE = Path(__file__).resolve().parent / "faults" / "eio.c"
FAULTY_ATTEMPTS = 12


def fail(message):
    print("io-fault: FAILED: " + message, file=sys.stderr)
    sys.exit(1)


class Client:
    """The demo client and its user's browser."""

    def __init__(self, base):
        self.base = base
        self.redirect = demo_redirect_uri(base)
        self.browser = requests.Session()
        self.codes = []
        self.grants = 0

    def authorize(self):
        """GET /authorize, logging in and consenting when asked; the final response."""
        query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": self.redirect, "scope": "openid", "state": "io"}
        response = self.browser.get(self.base + "authorize", params=query, allow_redirects=False, timeout=10)
        return log_in_and_consent(self.browser, self.base, response, self.redirect, timeout=10)

    @staticmethod
    def code_of(response):
        if response.status_code != 302:
            return None
        return parse_qs(urlsplit(response.headers["Location"]).query).get("code", [None])[0]

    def new_code(self):
        code = self.code_of(self.authorize())
        if code is None:
            fail("no code on the healthy path")
        self.codes.append(code)
        return code

    def redeem(self, code):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect,
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        response = requests.post(self.base + "oauth/token", data=form, timeout=10)
        if response.status_code == 200:
            self.grants += 1
        return response


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="directory holding authledger and authledger-replay")
    args = parser.parse_args()
    authledger, replay = binaries(args.bin)
    work = Path(tempfile.mkdtemp(prefix="authledger-iofault-"))
    shim, trigger, journal = work / "eio.so", work / "device-failing", work / "journal"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(SHIM_SOURCE), "-ldl"], check=True)
    environment = {**os.environ, "LD_PRELOAD": str(shim), "AUTHLEDGER_FAULT_FILE": str(trigger)}
    server = Server(authledger, journal, log_path=work / "server.log", env=environment)
    try:
        try:
            server.start_healthy()
        except ServerStartError as error:
            fail(str(error))
        client = Client(server.base)

        # 1. Healthy.
        if client.redeem(client.new_code()).status_code != 200:
            fail("the healthy redemption failed")
        kept = client.new_code()
        print("healthy: a code issued and redeemed; a second code kept for later")

        # 2. The device fails.
        trigger.touch()
        answers = {}
        for _ in range(FAULTY_ATTEMPTS):
            response = client.authorize()
            if client.code_of(response):
                fail("a code was issued while the journal could not be written")
            location = response.headers.get("Location", "")
            unavailable = response.status_code == 503 or "error=temporarily_unavailable" in location
            if not unavailable:
                fail("/authorize answered %d %s while the device failed" % (response.status_code, location[:120]))
            answers[response.status_code] = answers.get(response.status_code, 0) + 1
        redemption = client.redeem(kept)
        if redemption.status_code == 200 or redemption.json().get("error") != "temporarily_unavailable":
            fail("the kept code was answered %d %s while the device failed" % (redemption.status_code, redemption.text[:200]))
        print("failing device: %d authorizations refused (%s), the redemption refused with temporarily_unavailable, nothing issued"
              % (FAULTY_ATTEMPTS, ", ".join("%d × %d" % (count, status) for status, count in sorted(answers.items()))))

        # 3. The device heals; the server recovers by itself.
        trigger.unlink()
        deadline = time.monotonic() + 30
        while True:
            code = client.code_of(client.authorize())
            if code:
                client.codes.append(code)
                break
            if time.monotonic() > deadline:
                fail("no recovery within 30 s of the device healing")
            time.sleep(0.2)
        if client.redeem(kept).status_code != 200:
            fail("the kept code was not redeemable after recovery")
        if client.redeem(kept).status_code == 200:
            fail("the kept code was redeemed twice")
        print("healed: the server recovered without a restart; the kept code redeemed once")
    finally:
        if trigger.exists():
            trigger.unlink()
        server.stop(timeout=30)

    # 4. The journal: intact, and holding exactly what the client received.
    for label, result in check_journal(replay, str(journal)):
        if result.returncode != 0:
            fail("%s: exit %d: %s" % (label, result.returncode, result.output[-500:]))
    timeline = run_replay(replay, ["timeline", "--client", CLIENT_ID, "--format", "jsonl", "--journal", str(journal)])
    if timeline.returncode != 0:
        fail("timeline: exit %d" % timeline.returncode)
    events = [json.loads(line) for line in timeline.stdout.splitlines() if line.startswith("{")]
    issued = [event for event in events if event["type"] == "auth.code.issued"]
    granted = [event for event in events if event["type"] == "auth.token.issued"]
    if len(issued) != len(client.codes) or len(granted) != client.grants:
        fail("the journal holds %d codes and %d grants; the client received %d and %d"
             % (len(issued), len(granted), len(client.codes), client.grants))
    print("journal: verify and rebuild --check pass; %d codes and %d grants, exactly what the client received"
          % (len(issued), len(granted)))
    errors = (work / "server.log").read_text().count("Input/output error")
    if errors == 0:
        fail("the server log shows no EIO: the fault was not injected")
    print("server log: %d journal commits failed with EIO (Input/output error)" % errors)
    print("io-fault: passed")
    subprocess.run(["rm", "-rf", str(work)])  # kept on failure, for the server log


if __name__ == "__main__":
    main()
