#!/usr/bin/env python3
"""Several `authledger serve` nodes on one PostgreSQL journal: they act as one authorization server.

    python3 tools/cluster_test.py --bin .build/debug [--keep]

Starts a private PostgreSQL (tools/postgres, in a scratch directory, on a free port) and three nodes A, B
and C on it. Each node signs the journal with a key of its own: A creates the journal with its key, and
`authledger keys add` (signed by A's key) adds B's and C's before they start with `--key`. A and B share
one set of token signing keys (the same --journal base name); C signs tokens with its own
(`--token-keys`), which it publishes in the journal for A and B to list and accept. The first node applies the demo tenant, so every
node serves it with node A's issuer and redirect URI. Then it checks, each check printed as PASS or FAIL:

1. cross-node flow: a flow started at A (/authorize), logged in and consented at B, its code exchanged at
   C (200, access and ID token) and the access token — signed by C's own token key — accepted by A's
   /userinfo and listed in A's JWKS: an interaction, a code and a token minted at one node are valid at
   every other one;
2. shared SSO and consent: a second /authorize at C with the same browser goes straight back to the client
   with a code, without login or consent page: B's session and consent are seen by C;
3. concurrent redemption: one code posted to the token endpoint of all three nodes at once, several times
   each, behind a barrier: exactly one 200, every other answer 400 invalid_grant (repeated for a few codes):
   the nodes' batches are serialized on the shared journal, so a code is redeemed once cluster-wide;
3b. no blocking wait: full flows at every node (and a configuration read again) leave each node's
   `authledger_journal_store_waits_in_tasks` (/metrics) where it was: requests' reads are awaited, the
   writer waits on its own thread, and no request blocks one of the threads that run every task;
3c. reads known ahead in one statement: by each node's `authledger_journal_awaited_statements`, a logged-in
   browser's /authorize at A (its session's reads learned by the request before) sends one statement, and
   the exchange of its code none at A (A kept the code it issued) and two at B (the code, then its user's key);
3d. a code redeemed at B and presented again at A, which issued and kept it, within its lifetime: a replay
   there as anywhere (400 invalid_grant, and the token B issued revoked), with the same DPoP proof too
   (a grant already spent is a replay, not a refused proof);
4. nodes killed mid-traffic: clients run full flows at B (then C, in turn, --kills times) and it is killed
   with SIGKILL among them; every code the victim returned must be redeemable exactly once at A (what it
   acknowledged was committed to PostgreSQL), and the victim, restarted, serves again;
5. PostgreSQL unavailable: with PostgreSQL stopped, /authorize answers 503 (or sends the browser back with
   error=temporarily_unavailable), the token endpoint never answers 200 nor a 5xx other than 503, and no
   node exits; with PostgreSQL started again, every node completes flows again within 10 s without a
   restart, and a code refused during the outage is still redeemable, once;
6. the shared journal: after the nodes stop, `authledger-replay verify` (pinned to A's key, naming the three
   node keys), `rebuild --check` and `replay` (re-deciding every recorded request) exit 0 on it; and
   `authledger journal copy` to an LMDB directory gives a journal that verifies to the same events and root.

Prints one line per check, the tail of the node logs when one fails, a summary line (flows, redemptions,
journal head), and exits 1 when any check fails. The scratch directory (node logs, PostgreSQL) is removed
unless --keep is given or a check failed.
"""
import argparse
import base64
import json
import os
import re
import secrets
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from authledger_e2e import CLIENT_ID, CLIENT_SECRET, DEMO_USER_ID, DPoPKey, Server, ServerStartError, binaries, demo_redirect_uri
from authledger_e2e import free_port, install_missing, log_in_and_consent, pkce_pair, run_replay

install_missing([("requests", "requests"), ("cryptography", "cryptography")])
import requests  # noqa: E402 - installed just above when missing

POSTGRES = Path(__file__).resolve().parent / "postgres"
TIMEOUT = 10  # seconds, every HTTP request
SCOPE = "openid profile email"
RECOVERY_SECONDS = 10


class CheckFailed(Exception):
    """A check's expectation did not hold (the message says which)."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def short(response):
    """A response in one line: status, and Location, the title of an HTML page, or the body."""
    if response.status_code in (301, 302, 303, 307, 308):
        return "%d -> %s" % (response.status_code, response.headers.get("Location", "")[:160])
    if response.headers.get("Content-Type", "").startswith("text/html"):
        title = re.search(r"<title>(.*?)</title>", response.text, re.DOTALL | re.IGNORECASE)
        heading = re.search(r"<p[^>]*>(.*?)</p>", response.text, re.DOTALL | re.IGNORECASE)
        return "%d HTML page %r%s" % (response.status_code, title.group(1).strip() if title else "?",
                                     (" (%s)" % re.sub(r"<[^>]+>", "", heading.group(1)).strip()[:120]) if heading else "")
    return "%d %s" % (response.status_code, " ".join(response.text.split())[:200])


def describe_exit(result):
    """How an `authledger-replay` run ended, with its last output line and the first line of its stderr."""
    status = "killed by %s" % signal.Signals(-result.returncode).name if result.returncode < 0 else \
        "exited %d (signal %s)" % (result.returncode, signal.Signals(result.returncode - 128).name) if result.returncode > 128 else \
        "exited %d" % result.returncode
    stdout = result.stdout.strip().splitlines()
    stderr = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return "%s; stdout: %s; stderr: %s" % (status, stdout[-1][:200] if stdout else "(nothing)",
                                           " | ".join(stderr[:2])[:300] if stderr else "(nothing)")


def error_of(response):
    """The `error` member of a JSON answer, or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def new_session():
    """A browser: cookies for 127.0.0.1 are sent to every port, so to every node. Never through a proxy."""
    session = requests.Session()
    session.trust_env = False
    return session


class Tally:
    """What the run did, for the summary line."""

    def __init__(self):
        self.lock = threading.Lock()
        self.flows = 0  # codes received
        self.redemptions = 0  # token answers 200
        self.refusals = 0  # token answers 400 invalid_grant

    def add(self, **counts):
        with self.lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


class Cluster:
    def __init__(self, authledger, replay, work):
        self.authledger, self.replay, self.work = authledger, replay, work
        self.pg_dir = work / "pg"
        self.pg_port = free_port()
        self.store = None
        self.keys = work / "journal"  # the key files: journal.key, journal.tokenkeys
        self.nodes = {}
        self.tally = Tally()
        self.browser = new_session()  # the demo user's browser, logged in by check 1
        self.redirect = None

    # -- PostgreSQL

    def postgres(self, command):
        arguments = [str(POSTGRES), command, str(self.pg_dir)] + ([str(self.pg_port)] if command == "start" else [])
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise CheckFailed("tools/postgres %s failed (exit %d): %s" % (command, result.returncode, (result.stdout + result.stderr)[-500:]))
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""

    # -- the nodes

    def node_key(self, name):
        """Node `name`'s journal signing key file: A's is the journal's own (<journal>.key)."""
        return Path(str(self.keys) + ".key") if name == "A" else self.work / ("node-%s.key" % name)

    def node_store(self, name):
        """The store URL node `name` is started with (tools/network_fault_test.py puts a proxy in between)."""
        return self.store

    def start_nodes(self):
        for name in "ABC":
            self.nodes[name] = Server(self.authledger, self.keys, free_port(), log_path=self.work / ("node-%s.log" % name),
                                      extra_args=["--store", self.node_store(name), "--key", str(self.node_key(name))]
                                      + (["--token-keys", str(self.work / "node-C.tokenkeys")] if name == "C" else []))
        self.nodes["A"].start_healthy(timeout=60)  # creates the key files and applies the demo tenant
        for name in "BC":
            # A key of the node's own, added to the journal's signers by A's key, while A serves.
            added = subprocess.run([str(self.authledger), "keys", "add", "--store", self.store, "--journal", str(self.keys),
                                    str(self.node_key(name))], capture_output=True, text=True, timeout=60)
            if added.returncode != 0:
                raise CheckFailed("authledger keys add for node %s failed: %s" % (name, (added.stdout + added.stderr)[-500:]))
        self.nodes["B"].start()
        self.nodes["C"].start()
        self.nodes["B"].wait_healthy(timeout=60)
        self.nodes["C"].wait_healthy(timeout=60)
        self.redirect = demo_redirect_uri(self.nodes["A"].base)

    @property
    def issuer(self):
        return self.nodes["A"].base

    def log_tail(self, name, lines=15):
        path = self.nodes[name].log_path if name in self.nodes else self.pg_dir / "server.log"
        try:
            text = Path(path).read_text(errors="replace").splitlines()
        except OSError as error:
            return ["(no log: %s)" % error]
        return text[-lines:]

    # -- the client

    def authorize(self, session, node, state=None):
        """GET /authorize at `node` (redirects not followed): (response, code_verifier, state)."""
        verifier, challenge = pkce_pair()
        state = state or secrets.token_urlsafe(8)
        query = urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": self.redirect, "scope": SCOPE,
                           "state": state, "code_challenge": challenge, "code_challenge_method": "S256"})
        response = session.get(node.base + "authorize?" + query, allow_redirects=False, timeout=TIMEOUT)
        return response, verifier, state

    def code_of(self, response, state=None):
        """The code of a 302 to the redirect URI (checking state and iss when `state` is given), or None."""
        location = response.headers.get("Location", "")
        if response.status_code != 302 or not location.startswith(self.redirect):
            return None
        query = parse_qs(urlsplit(location).query)
        if state is not None and (query.get("state") != [state] or query.get("iss") != [self.issuer]):
            raise CheckFailed("callback with the wrong state or iss (expected iss %s): %s" % (self.issuer, location[:200]))
        code = query.get("code", [None])[0]
        if code:
            self.tally.add(flows=1)
        return code

    def flow(self, session, start, finish=None):
        """/authorize at `start`, login and consent (when asked) at `finish`: (final response, code or None, verifier)."""
        response, verifier, state = self.authorize(session, start)
        response = log_in_and_consent(session, (finish or start).base, response, self.redirect, timeout=TIMEOUT)
        return response, self.code_of(response, state), verifier

    def sso_code(self, node):
        """A code for the logged-in browser at `node`, logging in first when needed: (code, verifier)."""
        response, code, verifier = self.flow(self.browser, node)
        expect(code, "no code at node %s for the demo user: %s" % (self.name_of(node), short(response)))
        return code, verifier

    def redeem(self, node, code, verifier, session=None, headers=None):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect, "code_verifier": verifier,
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        response = (session or requests).post(node.base + "oauth/token", data=form, headers=headers or {}, timeout=TIMEOUT,
                                              **({} if session else {"proxies": {"http": None, "https": None}}))
        if response.status_code == 200:
            self.tally.add(redemptions=1)
        elif response.status_code == 400 and error_of(response) == "invalid_grant":
            self.tally.add(refusals=1)
        return response

    def name_of(self, node):
        return next((name for name, candidate in self.nodes.items() if candidate is node), "?")

    def waits_in_tasks(self, node):
        """The node's count of waits for PostgreSQL made on a thread that was running a task (/metrics)."""
        text = requests.get(node.base + "metrics", timeout=TIMEOUT, proxies={"http": None, "https": None}).text
        found = re.search(r"^authledger_journal_store_waits_in_tasks (\S+)$", text, re.MULTILINE)
        expect(found, "node %s's /metrics lacks authledger_journal_store_waits_in_tasks" % self.name_of(node))
        return int(float(found.group(1)))

    def awaited_reads(self, node):
        """The node's awaited reads so far (/metrics): {"statements", "answered", "waited"}."""
        text = requests.get(node.base + "metrics", timeout=TIMEOUT, proxies={"http": None, "https": None}).text
        counts = {}
        for key, metric in (("statements", "awaited_statements"), ("answered", "awaited_reads"), ("waited", "waited_reads")):
            found = re.search(r"^authledger_journal_%s (\S+)$" % metric, text, re.MULTILINE)
            expect(found, "node %s's /metrics lacks authledger_journal_%s" % (self.name_of(node), metric))
            counts[key] = int(float(found.group(1)))
        return counts

    def awaited_cost(self, node, step, what):
        """`step()`'s awaited reads at `node`: (its result, statements sent, readers answered awaited). A step
        whose read the node could not begin awaited (no connection came in time on a busy machine: answered
        by waiting, and counted so) is tried again, at most three times."""
        for _ in range(3):
            before = self.awaited_reads(node)
            result = step()
            after = self.awaited_reads(node)
            moved = {key: after[key] - before[key] for key in before}
            if moved["waited"] == 0:
                return result, moved["statements"], moved["answered"]
            time.sleep(2.1)  # the node's awaited reads rest for 2 s after a lease given up
        raise CheckFailed("%s at node %s was answered by waiting three times, never awaited" % (what, self.name_of(node)))

    # -- the checks; each returns a one-line detail, or raises CheckFailed

    def check_reads_in_one_statement(self):
        """A request's reads known ahead cost one statement, as counted by the node's /metrics: a logged-in,
        consented browser's /authorize (its session's reads learned by the request before); the exchange
        of its code at the node that issued it none (the node kept the code, and its commit checks that
        it is still unredeemed); at another node the exchange reads the code, then its user's key: two
        statements."""
        a, b = self.nodes["A"], self.nodes["B"]
        self.sso_code(a)  # the session's reads at A, learned
        details = []
        for redeemer in (a, b):
            def authorize():
                response, verifier, state = self.authorize(self.browser, a)
                code = self.code_of(response, state)
                expect(code, "A did not answer the logged-in browser with a code: %s" % short(response))
                return code, verifier
            (code, verifier), statements, answered = self.awaited_cost(a, authorize, "/authorize")
            expect(answered == 1 and statements == 1,
                   "A's /authorize for a known session read in %d statements, %d reads answered (expected 1 and 1)" % (statements, answered))
            tokens, statements, answered = self.awaited_cost(redeemer, lambda: self.redeem(redeemer, code, verifier), "the exchange")
            expect(tokens.status_code == 200, "%s refused A's code: %s" % (self.name_of(redeemer), short(tokens)))
            expected = 0 if redeemer is a else 2
            expect(answered == min(expected, 1) and statements == expected,
                   "the exchange at %s read in %d statements, %d reads answered (expected %d and %d)" % (
                       self.name_of(redeemer), statements, answered, expected, min(expected, 1)))
            details.append("exchange at %s: %d" % (self.name_of(redeemer), statements))
        return "/authorize at A with a known session: 1 statement; " + ", ".join(details)

    def check_replay_at_issuer(self):
        """A code A issued (and keeps, so that its exchange at A reads nothing), redeemed at B, then presented
        again at A within its lifetime: A answers 400 invalid_grant and revokes the token B issued, as a node
        that reads the code does; with the DPoP proof of B's redemption presented again, the same (the grant
        was spent: a replay, not only a replayed proof)."""
        a, b = self.nodes["A"], self.nodes["B"]
        details = []
        for key in (None, DPoPKey()):
            code, verifier = self.sso_code(a)
            headers = {"DPoP": key.proof("POST", self.issuer + "oauth/token")} if key else {}
            first = self.redeem(b, code, verifier, headers=headers)
            expect(first.status_code == 200, "B refused A's code: %s" % short(first))
            token, token_type = first.json()["access_token"], first.json()["token_type"]
            again = self.redeem(a, code, verifier, headers=headers)
            expect(again.status_code == 400 and error_of(again) == "invalid_grant",
                   "the code presented again at A (which issued it)%s: %s" % (" with the same DPoP proof" if key else "", short(again)))
            # The token B issued is revoked: /userinfo refuses it (a DPoP-bound token with a fresh proof).
            userinfo_headers = {"Authorization": "%s %s" % (token_type, token)}
            if key:
                userinfo_headers["DPoP"] = key.proof("GET", self.issuer + "userinfo", access_token=token)
            userinfo = requests.get(a.base + "userinfo", headers=userinfo_headers, timeout=TIMEOUT, proxies={"http": None, "https": None})
            expect(userinfo.status_code == 401, "B's token still works after the replay at A: /userinfo %s" % short(userinfo))
            details.append("%s: 400 invalid_grant, token revoked" % ("same DPoP proof" if key else "no proof"))
        return "code issued at A, redeemed at B, presented again at A: " + "; ".join(details)

    def check_no_waits_in_tasks(self):
        """Requests read awaited: flows at every node (authorize, login, consent, exchange, userinfo, healthz)
        make no node wait for PostgreSQL on a thread that runs tasks (start-up may; it is counted before)."""
        before = {name: self.waits_in_tasks(node) for name, node in self.nodes.items()}
        flows = 0
        for name, node in self.nodes.items():
            for _ in range(3):
                response, code, verifier = self.flow(new_session(), node)
                expect(code, "no code from a flow at %s: %s" % (name, short(response)))
                tokens = self.redeem(node, code, verifier)
                expect(tokens.status_code == 200, "%s's token endpoint refused its own code: %s" % (name, short(tokens)))
                userinfo = requests.get(node.base + "userinfo", headers={"Authorization": "Bearer " + tokens.json()["access_token"]},
                                        timeout=TIMEOUT, proxies={"http": None, "https": None})
                expect(userinfo.status_code == 200, "%s's /userinfo refused its own token: %s" % (name, short(userinfo)))
                requests.get(node.base + "healthz", timeout=TIMEOUT, proxies={"http": None, "https": None})
                flows += 1
        time.sleep(1.2)  # a configuration older than a second is read again (by a task of its own): one more request each
        for node in self.nodes.values():
            self.flow(new_session(), node)
        after = {name: self.waits_in_tasks(node) for name, node in self.nodes.items()}
        waited = {name: after[name] - before[name] for name in self.nodes}
        expect(not any(waited.values()), "waits for PostgreSQL on a task's thread during the flows: %s" % waited)
        return "%d flows and a configuration refresh at each node: no wait for PostgreSQL on a task's thread (%s before, at start-up)" % (
            flows, ", ".join("%s=%d" % item for item in before.items()))

    def check_cross_node_flow(self):
        a, b, c = self.nodes["A"], self.nodes["B"], self.nodes["C"]
        response, verifier, state = self.authorize(self.browser, a)
        location = response.headers.get("Location", "")
        expect(response.status_code == 302 and location.startswith("/login"),
               "A's /authorize did not send a new browser to the login page: %s" % short(response))
        pages = []
        response = log_in_and_consent(self.browser, b.base, response, self.redirect, timeout=TIMEOUT,
                                      on_page=lambda page: pages.append("consent" if 'name="action"' in page else "login"))
        code = self.code_of(response, state)
        expect(code, "login and consent at B did not end at the callback with a code: %s" % short(response))
        tokens = self.redeem(c, code, verifier)
        expect(tokens.status_code == 200, "C's token endpoint refused the code B issued: %s" % short(tokens))
        body = tokens.json()
        expect(body.get("access_token") and body.get("id_token"), "C's token answer lacks access_token or id_token: %s" % short(tokens))
        userinfo = requests.get(a.base + "userinfo", headers={"Authorization": "Bearer " + body["access_token"]}, timeout=TIMEOUT,
                                proxies={"http": None, "https": None})
        expect(userinfo.status_code == 200, "A's /userinfo refused C's access token: %s" % short(userinfo))
        expect(userinfo.json().get("sub") == DEMO_USER_ID, "A's /userinfo answered the wrong subject: %s" % short(userinfo))
        header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
        kids_at_a = [key.get("kid") for key in requests.get(a.base + ".well-known/jwks.json", timeout=TIMEOUT).json()["keys"]]
        kids_at_c = [key.get("kid") for key in requests.get(c.base + ".well-known/jwks.json", timeout=TIMEOUT).json()["keys"]]
        expect(header.get("kid") in kids_at_a, "A's JWKS does not list the key C signed with (%s): %s" % (header.get("kid"), kids_at_a))
        expect(sorted(kids_at_a) == sorted(kids_at_c), "A and C publish different JWKS: %s / %s" % (kids_at_a, kids_at_c))
        return "authorize@A -> %s@B -> code -> token@C 200 (access + ID token) -> userinfo@A 200 sub=%s" % (
            " -> ".join(pages) or "no pages", DEMO_USER_ID)

    def check_shared_session(self):
        c, b = self.nodes["C"], self.nodes["B"]
        response, verifier, state = self.authorize(self.browser, c)
        code = self.code_of(response, state)
        expect(code, "C did not answer with a code straight away (expected SSO + recorded consent from B): %s" % short(response))
        tokens = self.redeem(b, code, verifier)
        expect(tokens.status_code == 200, "B refused the code C issued by SSO: %s" % short(tokens))
        return "authorize@C answered 302 to the callback with a code (no login, no consent page); redeemed at B: 200"

    def check_concurrent_redemption(self, codes, per_node):
        names = [name for name in "ABC" for _ in range(per_node)]
        outcomes = []
        for round_number in range(codes):
            code, verifier = self.sso_code(self.nodes["ABC"[round_number % 3]])
            sessions = [new_session() for _ in names]
            for name, session in zip(names, sessions):  # open the connections first, so that the posts race
                session.get(self.nodes[name].base + "healthz", timeout=TIMEOUT)
            barrier = threading.Barrier(len(names))
            answers = [None] * len(names)

            def post(index):
                try:
                    barrier.wait(timeout=TIMEOUT)
                    answers[index] = self.redeem(self.nodes[names[index]], code, verifier, session=sessions[index])
                except Exception as error:  # noqa: BLE001 - reported below
                    answers[index] = error

            threads = [threading.Thread(target=post, args=(index,)) for index in range(len(names))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=3 * TIMEOUT)
            winners = [names[i] for i, answer in enumerate(answers) if isinstance(answer, requests.Response) and answer.status_code == 200]
            others = [(names[i], answer) for i, answer in enumerate(answers)
                      if not (isinstance(answer, requests.Response) and answer.status_code == 200)]
            wrong = [(name, answer) for name, answer in others
                     if not (isinstance(answer, requests.Response) and answer.status_code == 400 and error_of(answer) == "invalid_grant")]
            described = ", ".join("%s: %s" % (name, short(answer) if isinstance(answer, requests.Response) else repr(answer))
                                  for name, answer in wrong)
            expect(len(winners) == 1, "code %d: %d answers 200 (at %s) of %d concurrent redemptions; others: %s" % (
                round_number + 1, len(winners), ",".join(winners) or "none", len(names), described or "all 400 invalid_grant"))
            expect(not wrong, "code %d: answers other than 400 invalid_grant: %s" % (round_number + 1, described))
            outcomes.append(winners[0])
        return "%d codes x %d concurrent posts (%d per node): exactly one 200 each (won at %s), the rest 400 invalid_grant" % (
            codes, len(names), per_node, ",".join(outcomes))

    def check_node_killed(self, clients, cycles):
        """SIGKILL under traffic `cycles` times, B and C in turn; every code the victim handed out is
        redeemed exactly once at A."""
        summaries = [self.kill_once("BC"[cycle % 2], clients) for cycle in range(cycles)]
        return "%d kills (B and C in turn), %d clients each: codes handed out before each kill %s, all redeemed exactly once at A; %s" % (
            cycles, clients, "/".join(str(count) for count, _ in summaries), summaries[-1][1])

    def kill_once(self, victim, clients):
        a, b = self.nodes["A"], self.nodes[victim]
        acknowledged, lock, stop = [], threading.Lock(), threading.Event()
        errors = []

        def client(number):
            while not stop.is_set():
                try:
                    response, code, verifier = self.flow(new_session(), b)
                except (requests.RequestException, OSError) as error:  # the victim went away under us
                    errors.append(type(error).__name__)
                    return
                if code:
                    with lock:
                        acknowledged.append((code, verifier))
                elif b.alive:
                    errors.append("client %d: flow without a code while %s was alive: %s" % (number, victim, short(response)))
                    return

        threads = [threading.Thread(target=client, args=(number,), daemon=True) for number in range(clients)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 4 * clients and time.monotonic() < deadline and all(t.is_alive() for t in threads):
            time.sleep(0.02)
        time.sleep(0.05 + 0.2 * secrets.randbelow(100) / 100)  # land the kill at a random point of the flows
        with lock:
            before = len(acknowledged)
        b.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=3 * TIMEOUT)
        expect(not any(thread.is_alive() for thread in threads), "a client thread hung after B was killed")
        problems = [error for error in errors if error.startswith("client")]
        expect(not problems, "; ".join(problems))
        expect(acknowledged, "%s handed out no code before it was killed" % victim)

        for code, verifier in acknowledged:
            first = self.redeem(a, code, verifier)
            expect(first.status_code == 200, "a code %s had returned (one of %d) is not redeemable at A: %s" % (victim, len(acknowledged), short(first)))
            second = self.redeem(a, code, verifier)
            expect(second.status_code == 400 and error_of(second) == "invalid_grant",
                   "a code %s had returned was redeemed at A twice, or refused wrongly the second time: %s" % (victim, short(second)))
        for name in "ABC":
            if name != victim:
                expect(self.nodes[name].alive, "node %s exited when %s was killed" % (name, victim))

        b.start_healthy(timeout=60)
        response, code, verifier = self.flow(new_session(), b)
        expect(code, "%s, restarted, did not complete a full flow: %s" % (victim, short(response)))
        tokens = self.redeem(b, code, verifier)
        expect(tokens.status_code == 200, "%s, restarted, refused its own fresh code: %s" % (victim, short(tokens)))
        return len(acknowledged), "the victim restarted each time: /healthz and a full flow OK (%d flows cut short by the last kill)" % len(errors)

    def check_postgres_down(self):
        a, b, c = self.nodes["A"], self.nodes["B"], self.nodes["C"]
        kept_code, kept_verifier = self.sso_code(a)  # issued, never redeemed before the outage
        self.postgres("stop")
        seen = {}

        def note(what, response):
            seen[what] = short(response)

        try:
            # /authorize: a logged-in browser (which would otherwise get a code) at A and B, a new browser at A.
            for node, session, label in ((a, self.browser, "SSO browser@A"), (b, self.browser, "SSO browser@B"),
                                         (a, new_session(), "new browser@A")):
                response, _, state = self.authorize(session, node)
                location = response.headers.get("Location", "")
                if response.status_code == 302 and location.startswith("/login"):
                    response = log_in_and_consent(session, node.base, response, self.redirect, timeout=TIMEOUT)
                    location = response.headers.get("Location", "")
                note(label, response)
                expect(self.code_of(response) is None, "%s: a code was issued while PostgreSQL was down: %s" % (label, short(response)))
                unavailable = response.status_code == 503 or (
                    response.status_code == 302 and location.startswith(self.redirect) and "error=temporarily_unavailable" in location)
                expect(unavailable, "%s: /authorize answered neither 503 nor error=temporarily_unavailable: %s" % (label, short(response)))
            # The token endpoint with a real, unredeemed code, at A and C.
            for node in (a, c):
                label = "token@%s" % self.name_of(node)
                response = self.redeem(node, kept_code, kept_verifier)
                note(label, response)
                expect(response.status_code != 200, "%s: the code was redeemed while PostgreSQL was down" % label)
                expect(response.status_code == 503 or (response.status_code == 400 and error_of(response) == "temporarily_unavailable"),
                       "%s: expected 503 or 400 temporarily_unavailable: %s" % (label, short(response)))
            health = {name: requests.get(node.base + "healthz", timeout=TIMEOUT, proxies={"http": None, "https": None}).status_code
                      for name, node in self.nodes.items()}
            for name, node in self.nodes.items():
                expect(node.alive, "node %s exited while PostgreSQL was down (status %s)" % (name, node.returncode))
        finally:
            self.postgres("start")
        started = time.monotonic()

        recovered = {}
        for name in "AB":
            last = None
            while True:
                try:
                    response, code, verifier = self.flow(new_session(), self.nodes[name])
                    last = short(response)
                    if code and self.redeem(self.nodes[name], code, verifier).status_code == 200:
                        break
                except requests.RequestException as error:
                    last = repr(error)
                expect(time.monotonic() - started < RECOVERY_SECONDS,
                       "node %s did not complete a flow within %d s of PostgreSQL starting again; last: %s" % (name, RECOVERY_SECONDS, last))
                time.sleep(0.2)
            recovered[name] = time.monotonic() - started
        first = self.redeem(c, kept_code, kept_verifier)
        expect(first.status_code == 200, "the code refused during the outage is not redeemable after recovery: %s" % short(first))
        second = self.redeem(a, kept_code, kept_verifier)
        expect(second.status_code == 400, "the code refused during the outage was redeemed twice: %s" % short(second))
        for name, node in self.nodes.items():
            expect(node.alive, "node %s exited after PostgreSQL came back" % name)
        return "down: %s; healthz %s; nodes alive. Up again: flows OK at A after %.1f s, at B after %.1f s; kept code redeemed once" % (
            "; ".join("%s %s" % item for item in seen.items()),
            ",".join("%s=%d" % item for item in health.items()), recovered["A"], recovered["B"])

    def check_journal(self):
        stopped = {name: node.stop(timeout=30) for name, node in self.nodes.items()}
        statuses = ",".join("%s=%s" % (name, node.returncode) for name, node in self.nodes.items())
        expect(all(stopped.values()), "nodes that did not stop within 30 s of SIGTERM (killed): %s" % [n for n, ok in stopped.items() if not ok])
        expect(all(node.returncode == 0 for node in self.nodes.values()), "nodes did not exit 0 on SIGTERM: %s" % statuses)
        store = ["--store", self.store, "--journal", str(self.keys)]
        pinned = self.work / "pinned.keys"
        exported = subprocess.run([str(self.authledger), "keys", "export-public"] + store, capture_output=True, text=True, timeout=60)
        expect(exported.returncode == 0, "keys export-public --store: %s" % (exported.stdout + exported.stderr)[-300:])
        pinned.write_text(exported.stdout.splitlines()[0] + "\n")  # the genesis key (A's) alone
        results = {}
        for label, arguments in (("verify", ["verify", "--public-key", str(pinned)]), ("rebuild --check", ["rebuild", "--check"]),
                                 ("replay", ["replay"])):
            results[label] = run_replay(self.replay, arguments + store, timeout=120)
        self.verify_output = results["verify"].stdout
        failed = ["authledger-replay %s --store: %s" % (label, describe_exit(result)) for label, result in results.items() if result.returncode != 0]
        expect(not failed, "\n    ".join([""] + failed))
        keys_line = next((line for line in self.verify_output.splitlines() if line.startswith("keys:")), "")
        expect(len(re.findall(r"\b[0-9a-f]{16}\b", keys_line)) == 3 and "pinned" in keys_line,
               "verify should name three node keys, pinned to A's: %r" % keys_line)
        replay_summary = results["replay"].stdout.strip().splitlines()[-1] if results["replay"].stdout.strip() else ""

        # The shared journal copied out to an LMDB directory: the same events and root, and its projections.
        copy = self.work / "copy"
        copied = subprocess.run([str(self.authledger), "journal", "copy", "--from", self.store, "--to", str(copy)],
                                capture_output=True, text=True, timeout=120)
        expect(copied.returncode == 0, "journal copy --from the store: %s" % (copied.stdout + copied.stderr)[-300:])
        local = {label: run_replay(self.replay, arguments + ["--journal", str(copy)], timeout=120)
                 for label, arguments in (("verify", ["verify", "--public-key", str(pinned)]), ("rebuild --check", ["rebuild", "--check"]))}
        failed = ["authledger-replay %s on the copy: %s" % (label, describe_exit(result)) for label, result in local.items() if result.returncode != 0]
        expect(not failed, "\n    ".join([""] + failed))
        expect(local["verify"].stdout.splitlines()[:1] == self.verify_output.splitlines()[:1],
               "the copy verifies differently: %r / %r" % (local["verify"].stdout.splitlines()[:1], self.verify_output.splitlines()[:1]))
        return ("nodes stopped by SIGTERM (exit %s); verify, rebuild --check and replay exit 0 (verify: %s; replay: %s); "
                "journal copy to LMDB: same events and root, projections rebuild" % (
                    statuses, self.verify_output.strip().splitlines()[0][:120] if self.verify_output.strip() else "", replay_summary[:160]))


def run_checks(checks, cluster, after_failure=None, stop_at_failure=False):
    """Runs each (name, check) in turn, printing PASS or FAIL with its detail, and the nodes' last log lines
    after a failure (then `after_failure(name)`); returns [(name, passed)]. Every check runs unless
    `stop_at_failure`."""
    results = []
    for name, check in checks:
        started = time.monotonic()
        try:
            detail = check()
            results.append((name, True))
            print("PASS %s (%.1f s): %s" % (name, time.monotonic() - started, detail), flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported
            results.append((name, False))
            message = str(error) if isinstance(error, CheckFailed) else "%s\n%s" % (repr(error), traceback.format_exc().rstrip())
            print("FAIL %s (%.1f s): %s" % (name, time.monotonic() - started, message), flush=True)
            for node in cluster.nodes:
                print("  node %s log (last lines):\n    %s" % (node, "\n    ".join(cluster.log_tail(node))))
            if after_failure:
                after_failure(name)
            if stop_at_failure:
                break
    return results


def journal_head(verify_output):
    """The head sequence number as `authledger-replay verify` reports it, or '?'."""
    for pattern in (r"verified (\d+) events", r"head\D{0,20}#?(\d+)"):
        match = re.search(pattern, verify_output, re.IGNORECASE)
        if match:
            return match.group(1)
    return "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="directory holding authledger and authledger-replay")
    parser.add_argument("--codes", type=int, default=5, help="codes redeemed concurrently in check 3 (default 5)")
    parser.add_argument("--per-node", type=int, default=2, help="concurrent redemptions of each code per node (default 2)")
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs under traffic in check 4, B and C in turn (default 4)")
    parser.add_argument("--clients", type=int, default=3, help="client threads running flows at B when it is killed (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, PostgreSQL data)")
    args = parser.parse_args()
    authledger, replay = binaries(args.bin)
    for path in (authledger, replay):
        if not os.access(path, os.X_OK):
            sys.exit("cluster: no executable %s" % path)

    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="authledger-cluster-"))
    os.chmod(work, 0o755)  # as root, PostgreSQL runs as `postgres` and must reach work/pg
    cluster = Cluster(authledger, replay, work)
    results = []
    try:
        try:
            cluster.store = cluster.postgres("start")
            print("cluster: PostgreSQL at %s (%s)" % (cluster.store, cluster.pg_dir), flush=True)
            cluster.start_nodes()
        except (CheckFailed, ServerStartError, subprocess.SubprocessError, OSError) as error:
            print("cluster: FAILED to start: %s" % error)
            for name in cluster.nodes:
                print("  node %s log:\n    %s" % (name, "\n    ".join(cluster.log_tail(name))))
            return 1
        print("cluster: nodes %s" % ", ".join("%s=%s" % (name, node.base) for name, node in cluster.nodes.items()), flush=True)

        checks = [
            ("1 cross-node flow", cluster.check_cross_node_flow),
            ("2 shared SSO session and consent", cluster.check_shared_session),
            ("3 concurrent redemption across nodes", lambda: cluster.check_concurrent_redemption(args.codes, args.per_node)),
            ("3b no wait for PostgreSQL on a task's thread", cluster.check_no_waits_in_tasks),
            ("3c a request's reads known ahead in one statement", cluster.check_reads_in_one_statement),
            ("3d a code replayed at the node that issued it", cluster.check_replay_at_issuer),
            ("4 nodes killed mid-traffic", lambda: cluster.check_node_killed(args.clients, args.kills)),
            ("5 PostgreSQL unavailable", cluster.check_postgres_down),
            ("6 shared journal verifies", cluster.check_journal),
        ]
        def postgres_log(name):
            if name.startswith("5"):
                print("  PostgreSQL log (last lines):\n    %s" % "\n    ".join(cluster.log_tail("pg")))

        results += run_checks(checks, cluster, after_failure=postgres_log)
    finally:
        for node in cluster.nodes.values():
            node.kill()
        try:
            cluster.postgres("stop")
        except (CheckFailed, subprocess.SubprocessError, OSError) as error:
            print("cluster: could not stop PostgreSQL: %s" % error)

    failed = [name for name, ok in results if not ok]
    tally = cluster.tally
    head = journal_head(getattr(cluster, "verify_output", ""))
    if head == "?":  # verify did not report: the last sequence number a node logged when it closed the journal
        closed = [int(number) for name in cluster.nodes for line in cluster.log_tail(name, 5)
                  for number in re.findall(r"journal closed at #(\d+)", line)]
        head = "%d (from the node logs; verify reported none)" % max(closed) if closed else "?"
    print("summary: %d flows (codes received), %d redemptions (200), %d refused as invalid_grant; journal head #%s; %.1f s" % (
        tally.flows, tally.redemptions, tally.refusals, head, time.monotonic() - began))
    if failed or args.keep:
        print("cluster: scratch directory kept: %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("cluster: %d passed, %d failed%s" % (len(results) - len(failed), len(failed), (": " + ", ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
