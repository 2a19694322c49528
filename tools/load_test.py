#!/usr/bin/env python3
"""Load test, end to end: worker processes send mixed traffic to a real `authledger serve` for a while,
then the journal it wrote is verified and compared with what the clients received.

    tools/load_test.py --bin .build/debug [--seconds 60] [--workers 8] [--keep]

The server starts on an empty journal in a temporary directory (so with the demo tenant) on a free port.
Each worker process logs in once (login and consent pages, like tools/crash_loop.py) and then, until the
time is up, picks requests at random:

  valid          GET /authorize for the consented user, with PKCE (302 with a code to the callback);
                 POST /oauth/token redeeming such a code with its code_verifier (200);
                 POST /oauth/token with grant_type=refresh_token, rotating the newest refresh token (200)
  bad on purpose a wrong client secret (401 invalid_client; sent with a real unredeemed code, which must
                 stay redeemable); an unknown code (400 invalid_grant); an unregistered redirect_uri (400
                 error page, no redirect); missing parameters (400: /authorize without client_id,
                 /oauth/token without grant_type or without code)

It prints, per kind of request, the count, the rate, the latency percentiles and the errors. An error is
a valid request that did not get its expected answer, a bad request that did not get its expected 4xx
(a 5xx is always an error), or a request that got no answer at all. Latencies are reported, never
asserted. Then the server is stopped with SIGTERM (it must exit 0), `authledger-replay verify` and
`rebuild --check` must pass, and the exported journal must hold every code, access token and refresh
token the clients received, with as many issuances as the clients saw.

Secrets: no secret, password, raw code or token may appear in the journal or the logs. The server runs
with `--log-format json` (JSON lines on stderr; start-up and shutdown lines on stdout), both captured
to files; its log level is as verbose as it goes (`--log-level trace`: every authorization's decision
line too; LOG_LEVEL=trace is set for any logger that reads it). The workers keep every raw value they sent or
received: the demo user's password, the client secret, each code, PKCE code_verifier, access token and
ID token (whole, and the signature segment alone), refresh token, the SSO session cookie, the CSRF
token (the al_bind cookie), the login interaction id, and the wrong secrets and unknown codes the bad
requests sent. After the run, the LMDB file <journal>/data.mdb (as bytes, free pages included), the
`authledger-replay export --format jsonl` bundle and the two log files are searched for them: every
run of base64url characters (and dots, for JWTs) of 16 or more is looked up whole, by dot-separated
segment, and by its first and last N characters for each length N a secret has (a value glued to
binary bytes on one side); the password and client secret, which are short or have spaces, are
searched as plain strings (the password also form- and percent-encoded). Hashes of the values are
expected and are not looked for. A raw value found fails the run, naming its kind, where it was found
and only a prefix of it. Exits 1 on any error.
"""
import argparse
import base64
import collections
import hashlib
import json
import math
import multiprocessing
import os
import queue
import random
import re
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import requests

from authledger_e2e import (AUDIENCE, CLIENT_ID, CLIENT_SECRET, PASSWORD, Server, ServerStartError, b64url, binaries,
                            check_journal, demo_redirect_uri, hidden_field, log_in_and_consent, pkce_pair, run_replay)

SCOPE = "openid profile offline_access"
TIMEOUT = 30

# Kinds of request: (name, valid?, what is expected, weight in the mix).
KINDS = [
    ("authorize", True, "302 code", 30),
    ("token: code + PKCE", True, "200", 24),
    ("token: refresh", True, "200", 14),
    ("bad: wrong secret", False, "401 invalid_client", 3),  # each one costs the server an Argon2id run
    ("bad: unknown code", False, "400 invalid_grant", 9),
    ("bad: redirect_uri", False, "400 page", 9),
    ("bad: missing params", False, "400", 11),
]
# Bad kinds that (at least sometimes) go to the token endpoint, where every refusal is an auth.token.rejected.
BAD_TOKEN_KINDS = ("bad: wrong secret", "bad: unknown code", "bad: missing params")
ERROR_SAMPLES = 5
# Runs of base64url characters, dots included (a JWT is one run): the candidates for a raw secret.
SECRET_RUN = re.compile(rb"[A-Za-z0-9_.-]{16,}")
# Cookie names, as kinds of secret.
COOKIE_KINDS = {"al_session": "SSO session cookie", "al_bind": "CSRF token (al_bind cookie)"}


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def short(response):
    """A response, as an error message shows it."""
    body = response.text
    if "html" in response.headers.get("Content-Type", ""):
        match = re.search(r"<p[^>]*>(.*?)</p>", body, re.S)
        body = "page: " + (match.group(1).strip() if match else body[:120])
    location = response.headers.get("Location")
    return "%d %s%s" % (response.status_code, body[:240], " -> " + location[:160] if location else "")


class Worker:
    """One client process: its session, the codes and refresh tokens it holds, what it measured."""

    def __init__(self, base, number):
        self.base, self.number = base, number
        self.redirect = demo_redirect_uri(base)
        self.session = requests.Session()
        self.count = 0
        self.pending = []  # (code, verifier), newest last
        self.refresh_tokens = []  # newest last
        self.latencies = collections.defaultdict(list)
        self.errors = collections.Counter()
        self.samples = collections.defaultdict(list)
        self.no_answer = collections.Counter()
        self.codes = []  # hashes of every code received
        self.redeemed = []  # hashes of the codes redeemed with 200
        self.access_ids = []  # jti of every access token received
        self.refresh_hashes = []  # hashes of every refresh token received
        self.ok = collections.Counter()
        self.bad_token_sent = 0  # bad requests sent to the token endpoint (each is an auth.token.rejected)
        self.raw_values = collections.defaultdict(set)  # kind of secret -> every raw value sent or received

    def keep_secret(self, kind, value):
        """Remembers a raw secret, for the search of the journal and the logs after the run."""
        if value:
            self.raw_values[kind].add(value)

    def keep_cookies(self):
        for cookie in self.session.cookies:
            self.keep_secret(COOKIE_KINDS.get(cookie.name, "cookie " + cookie.name), cookie.value)

    # -- helpers

    def authorize_query(self, **changes):
        verifier, challenge = pkce_pair()
        state = "w%d-%d" % (self.number, self.count)
        self.count += 1
        parameters = {
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": self.redirect, "scope": SCOPE, "audience": AUDIENCE,
            "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        }
        parameters.update(changes)
        return urlencode({k: v for k, v in parameters.items() if v is not None}), verifier, state

    def token_request(self, bad=False, **fields):
        self.bad_token_sent += bad
        return self.session.post(urljoin(self.base, "oauth/token"), data=fields, timeout=TIMEOUT)

    def keep_tokens(self, response):
        """Remembers what a 200 from the token endpoint gave; returns a problem, or None."""
        try:
            body = response.json()
            access, refresh = body["access_token"], body["refresh_token"]
            for kind, token in (("access token", access), ("ID token", body.get("id_token"))):
                if isinstance(token, str):
                    self.keep_secret(kind, token)
                    self.keep_secret(kind + " signature", token.rsplit(".", 1)[-1])
            self.keep_secret("refresh token", refresh)
            if body.get("token_type") != "Bearer" or not body.get("id_token"):
                return "token response without token_type Bearer or id_token: %s" % short(response)
            self.access_ids.append(jwt_claims(access)["jti"])
        except (ValueError, KeyError, IndexError, AttributeError) as error:
            return "unexpected token response (%s): %s" % (error, short(response))
        self.refresh_hashes.append(sha256_hex(refresh))
        self.refresh_tokens.append(refresh)
        del self.refresh_tokens[:-50]
        return None

    def code_from(self, response, state):
        """The code of a 302 to the callback, or a problem."""
        location = response.headers.get("Location", "")
        if response.status_code != 302 or not location.startswith(self.redirect):
            return None, "expected 302 to the callback with a code, got %s" % short(response)
        query = parse_qs(urlparse(location).query)
        if "code" not in query or query.get("state") != [state] or query.get("iss") != [self.base]:
            return None, "callback without code, or wrong state or iss: %s" % location[:200]
        code = query["code"][0]
        self.keep_secret("authorization code", code)
        self.codes.append(sha256_hex(code))
        return code, None

    # -- set-up: log in and consent once, as a browser would

    def keep_page_secrets(self, page):
        """The hidden values of a login or consent page: the interaction id and the CSRF token."""
        self.keep_secret("login interaction id", hidden_field(page, "state"))
        self.keep_secret(COOKIE_KINDS["al_bind"], hidden_field(page, "csrf"))

    def log_in(self):
        query, verifier, state = self.authorize_query()
        response = self.session.get(urljoin(self.base, "authorize?" + query), allow_redirects=False, timeout=TIMEOUT)
        response = log_in_and_consent(self.session, self.base, response, self.redirect, timeout=TIMEOUT, on_page=self.keep_page_secrets)
        code, problem = self.code_from(response, state)
        if problem:
            raise RuntimeError("login and consent did not end at the callback: " + problem)
        self.keep_cookies()
        if "al_session" not in self.session.cookies:
            raise RuntimeError("no SSO session cookie after login")
        self.pending.append((code, verifier))

    # -- the requests; each returns a problem (str) or None

    def authorize(self):
        query, verifier, state = self.authorize_query()
        response = self.session.get(urljoin(self.base, "authorize?" + query), allow_redirects=False, timeout=TIMEOUT)
        code, problem = self.code_from(response, state)
        if code:
            self.pending.append((code, verifier))
        return problem

    def redeem_code(self):
        code, verifier = self.pending.pop()
        self.keep_secret("PKCE code_verifier", verifier)
        response = self.token_request(grant_type="authorization_code", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                      redirect_uri=self.redirect, code=code, code_verifier=verifier)
        if response.status_code != 200:
            return "code exchange: expected 200, got %s" % short(response)
        self.redeemed.append(sha256_hex(code))
        return self.keep_tokens(response)

    def refresh(self):
        presented = self.refresh_tokens.pop()  # used once, whatever the answer
        response = self.token_request(grant_type="refresh_token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                      refresh_token=presented)
        if response.status_code != 200:
            return "refresh: expected 200, got %s" % short(response)
        if response.json().get("refresh_token") == presented:
            return "refresh: the refresh token was not rotated"
        return self.keep_tokens(response)

    def expect_error(self, response, status, error):
        try:
            got = response.json().get("error") if response.status_code == status else None
        except ValueError:
            got = None
        if response.status_code != status or got != error:
            return "expected %d %s, got %s" % (status, error, short(response))
        return None

    def wrong_secret(self):
        # With a real unredeemed code when there is one: a failed client authentication must not spend it.
        code, verifier = self.pending[-1] if self.pending else (b64url(os.urandom(32)), None)
        if not self.pending:
            self.keep_secret("unknown code (bad request)", code)
        self.keep_secret("PKCE code_verifier", verifier)
        wrong = "wrong-" + secrets.token_hex(16)  # long enough to be searched for as a run
        self.keep_secret("wrong client secret (bad request)", wrong)
        response = self.token_request(bad=True, grant_type="authorization_code", client_id=CLIENT_ID, client_secret=wrong,
                                      redirect_uri=self.redirect, code=code, code_verifier=verifier)
        return self.expect_error(response, 401, "invalid_client")

    def unknown_code(self):
        code, verifier = b64url(os.urandom(32)), b64url(os.urandom(32))
        self.keep_secret("unknown code (bad request)", code)
        self.keep_secret("unknown code_verifier (bad request)", verifier)
        response = self.token_request(bad=True, grant_type="authorization_code", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                      redirect_uri=self.redirect, code=code, code_verifier=verifier)
        return self.expect_error(response, 400, "invalid_grant")

    def error_page(self, query, what):
        response = self.session.get(urljoin(self.base, "authorize?" + query), allow_redirects=False, timeout=TIMEOUT)
        if response.status_code != 400 or "Location" in response.headers or "text/html" not in response.headers.get("Content-Type", ""):
            return "%s: expected a 400 error page (no redirect), got %s" % (what, short(response))
        return None

    def bad_redirect(self):
        query, _, _ = self.authorize_query(redirect_uri=random.choice(
            ["https://evil.example/callback", self.redirect + "/x", self.redirect.replace("127.0.0.1", "localhost")]))
        return self.error_page(query, "unregistered redirect_uri")

    def missing_params(self):
        variant = random.randrange(3)
        if variant == 0:
            query, _, _ = self.authorize_query(client_id=None)
            return self.error_page(query, "/authorize without client_id")
        if variant == 1:
            code = b64url(os.urandom(32))
            self.keep_secret("unknown code (bad request)", code)
            response = self.token_request(bad=True, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code)
            return self.expect_error(response, 400, "invalid_request")
        response = self.token_request(bad=True, grant_type="authorization_code", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                      redirect_uri=self.redirect)
        return self.expect_error(response, 400, "invalid_request")

    def pick(self):
        """The next kind: at random by weight, but a redemption needs a code and a refresh a refresh token."""
        names = [name for name, _, _, _ in KINDS]
        kind = random.choices(names, weights=[weight for _, _, _, weight in KINDS])[0]
        if kind == "token: refresh" and not self.refresh_tokens:
            kind = "token: code + PKCE"
        if kind == "token: code + PKCE" and not self.pending:
            kind = "authorize"
        return kind

    def run(self, seconds):
        actions = {
            "authorize": self.authorize, "token: code + PKCE": self.redeem_code, "token: refresh": self.refresh,
            "bad: wrong secret": self.wrong_secret, "bad: unknown code": self.unknown_code,
            "bad: redirect_uri": self.bad_redirect, "bad: missing params": self.missing_params,
        }
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            kind = self.pick()
            started = time.perf_counter()
            try:
                problem = actions[kind]()
            except requests.RequestException as error:
                problem = "no answer: %s" % error
                self.no_answer[kind] += 1
            self.latencies[kind].append((time.perf_counter() - started) * 1000)
            if problem:
                self.errors[kind] += 1
                if len(self.samples[kind]) < ERROR_SAMPLES:
                    self.samples[kind].append(problem)
            else:
                self.ok[kind] += 1
            # Codes live 60 s; the newest are redeemed first, so keep only a few.
            del self.pending[:-20]
        self.keep_cookies()

    def result(self):
        return {
            "latencies": dict(self.latencies), "errors": dict(self.errors), "samples": dict(self.samples),
            "no_answer": dict(self.no_answer), "ok": dict(self.ok), "codes": self.codes, "redeemed": self.redeemed,
            "access_ids": self.access_ids, "refresh_hashes": self.refresh_hashes,
            "bad_token_sent": self.bad_token_sent, "raw_values": {kind: sorted(values) for kind, values in self.raw_values.items()},
        }


def worker_main(base, number, seconds, barrier, results):
    """Entry point of a worker process: log in, wait for the others, run, report."""
    random.seed(os.urandom(16))
    worker = Worker(base, number)
    setup_problem = None
    try:
        worker.log_in()
    except Exception:  # noqa: BLE001 - reported to the parent, which fails the run
        setup_problem = traceback.format_exc(limit=3)
    try:
        barrier.wait(timeout=300)
    except Exception:  # noqa: BLE001
        setup_problem = setup_problem or "the other workers did not start"
    if setup_problem:
        results.put({"number": number, "setup_problem": setup_problem})
        return
    worker.run(seconds)
    results.put({"number": number, **worker.result()})


def percentile(ordered, fraction):
    """Nearest-rank percentile of a sorted list."""
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def stop_server(server, out_path, err_path):
    """SIGTERM; returns the problems (it must exit 0 and close the journal) and the head it closed at."""
    problems = []
    if not server.stop(timeout=60):
        return ["the server did not exit within 60 s of SIGTERM (killed)"], None
    status = server.returncode
    with open(out_path, errors="replace") as handle:
        out = handle.read()
    with open(err_path, errors="replace") as handle:
        err = handle.read()
    if status != 0:
        problems.append("the server exited with status %d after SIGTERM" % status)
    closed = re.search(r"journal closed at #(\d+)", out)
    if not closed:
        problems.append("the server did not report closing its journal")
    bad_lines = [line for line in (out + err).splitlines() if is_error_line(line)]
    if bad_lines:
        problems.append("the server logged %d error lines, first: %s" % (len(bad_lines), bad_lines[0][:300]))
    return problems, int(closed.group(1)) if closed else None


def is_error_line(line):
    """A JSON log line at level error or critical, or any other line that speaks of an error."""
    if line.startswith("{"):
        try:
            return json.loads(line).get("level") in ("error", "critical")
        except ValueError:
            pass
    return bool(re.search(r"\b(error|critical|fatal)\b", line, re.I))


def export_journal(replay, journal, work):
    """`authledger-replay export --format jsonl` into work/export; returns the bundle directory."""
    out = os.path.join(work, "export")
    result = run_replay(replay, ["export", "--journal", journal, "--format", "jsonl", "--out", out])
    if result.returncode != 0:
        raise RuntimeError("export failed (%d): %s" % (result.returncode, result.output[-500:]))
    return out


def journal_events(bundle):
    with open(os.path.join(bundle, "events.jsonl")) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def compare_journal(events, results, totals):
    """What the journal records against what the clients saw; returns (lines to print, problems)."""
    lines, problems = [], []
    by_type = collections.Counter(event["type"] for event in events)
    issued_codes = {event["payload"]["code_hash"] for event in events if event["type"] == "auth.code.issued"}
    tokens = [event["payload"] for event in events if event["type"] == "auth.token.issued"]
    code_tokens = [t for t in tokens if t.get("grant_type") == "authorization_code"]
    refresh_tokens = [t for t in tokens if t.get("grant_type") == "refresh_token"]
    token_codes = {t.get("code_hash") for t in code_tokens}
    access_ids = {t.get("access_token_id") for t in tokens}
    refresh_issued = {event["payload"]["token_hash"] for event in events if event["type"] == "auth.refresh.issued"}

    received = [code for result in results for code in result["codes"]]
    redeemed = [code for result in results for code in result["redeemed"]]
    client_access = [jti for result in results for jti in result["access_ids"]]
    client_refresh = [token for result in results for token in result["refresh_hashes"]]
    unanswered = sum(sum(result["no_answer"].values()) for result in results)

    def check(label, journal_count, client_count, missing, slack):
        extra = journal_count - client_count
        ok = not missing and 0 <= extra <= slack
        lines.append("  %-46s journal %7d, clients %7d%s" % (
            label, journal_count, client_count, "" if ok else "  <- MISMATCH (%d missing from the journal)" % missing))
        if not ok:
            problems.append("%s: journal %d, clients %d, %d received but not in the journal" % (label, journal_count, client_count, missing))

    lines.append("journal against clients (%d events):" % len(events))
    check("auth.code.issued / codes received", len(issued_codes), len(set(received)),
          len(set(received) - issued_codes), unanswered)
    check("auth.token.issued (code) / codes redeemed", len(code_tokens), len(set(redeemed)),
          len(set(redeemed) - token_codes), unanswered)
    check("auth.token.issued (refresh) / refreshes", len(refresh_tokens), totals["refreshed"], 0, unanswered)
    check("access token ids / access tokens received", len(access_ids), len(set(client_access)),
          len(set(client_access) - access_ids), unanswered)
    check("auth.refresh.issued / refresh tokens received", len(refresh_issued), len(set(client_refresh)),
          len(set(client_refresh) - refresh_issued), unanswered)
    if len(set(received)) != len(received):
        problems.append("the server gave the same code twice")
    rejected = by_type["auth.token.rejected"]
    lines.append("  %-46s journal %7d, bad token requests sent %d (%d token requests failed)" % (
        "auth.token.rejected", rejected, totals["bad_token"], totals["token_errors"]))
    if abs(rejected - totals["bad_token"]) > totals["token_errors"]:
        problems.append("auth.token.rejected: %d in the journal for %d bad token requests" % (rejected, totals["bad_token"]))
    for kind in ("auth.code.replayed", "auth.refresh.family_revoked"):
        if by_type[kind]:
            problems.append("%d %s events, but no client replayed a code or reused a refresh token" % (by_type[kind], kind))
    return lines, problems


def find_raw_values(data, raw, fixed):
    """Yields (offset, value) for each raw secret in data (bytes): raw (a set of base64url-ish values,
    16 characters or more) looked up among the candidate runs, fixed (a few other strings) searched."""
    lengths = sorted({len(value) for value in raw if b"." not in value})
    for match in SECRET_RUN.finditer(data):
        run, start = match.group(), match.start()
        pieces = [(start, run)]
        if b"." in run:
            offset = start
            for segment in run.split(b"."):
                pieces.append((offset, segment))
                offset += len(segment) + 1
        for offset, piece in pieces:
            if piece in raw:
                yield offset, piece
                continue
            # Glued to other base64url bytes on one side (binary neighbours in LMDB pages, say).
            for length in lengths:
                if length >= len(piece):
                    break
                if piece[:length] in raw:
                    yield offset, piece[:length]
                if piece[-length:] in raw:
                    yield offset + len(piece) - length, piece[-length:]
    for value in fixed:
        position = data.find(value)
        while position != -1:
            yield position, value
            position = data.find(value, position + 1)


def check_secrets(results, journal, bundle, log_paths):
    """Searches the journal file, its export and the server logs for the raw secrets the clients used;
    returns (lines to print, problems)."""
    kinds = {}  # raw value (bytes) -> its kind
    for result in results:
        for kind, values in result["raw_values"].items():
            for value in values:
                kinds.setdefault(value.encode(), kind)
    raw = {value for value in kinds if len(value) >= 16}
    short_values = len(kinds) - len(raw)
    fixed = {}  # value -> (kind, the string as used)
    for variant in (PASSWORD, PASSWORD.replace(" ", "+"), PASSWORD.replace(" ", "%20")):
        fixed[variant.encode()] = ("demo user password", PASSWORD)
    fixed[CLIENT_SECRET.encode()] = ("client secret", CLIENT_SECRET)

    data_file = os.path.join(journal, "data.mdb")
    sources = [("the journal file data.mdb", data_file, "offset")]
    if bundle:
        sources += [("the export " + name, os.path.join(bundle, name), "line") for name in sorted(os.listdir(bundle))]
    sources += [("the server " + label, path, "line") for label, path in log_paths]
    found = collections.defaultdict(list)  # (kind, source) -> [(where, value)]
    journal_bytes = log_lines = 0
    for source, path, unit in sources:
        with open(path, "rb") as handle:
            data = handle.read()
        if path == data_file:
            journal_bytes = len(data)
        elif unit == "line" and source.startswith("the server"):
            log_lines += data.count(b"\n")
        seen = set()
        for offset, value in find_raw_values(data, raw, fixed):
            if value in seen:
                continue
            seen.add(value)
            kind, used = fixed.get(value) or (kinds[value], value.decode())
            if unit == "offset":
                where = "byte %d" % offset
            else:
                where = "line %d" % (data.count(b"\n", 0, offset) + 1)
                if source.endswith(".jsonl"):
                    end = data.find(b"\n", offset)
                    try:
                        event = json.loads(data[data.rfind(b"\n", 0, offset) + 1:end if end != -1 else len(data)])
                        where += " (event #%s %s)" % (event.get("sequence"), event.get("type"))
                    except ValueError:
                        pass
            found[(kind, source)].append((where, used))

    total = len(raw) + 2  # the password and the client secret
    leaked = {used for hits in found.values() for _, used in hits}
    lines = ["secrets: %d of %d raw values found in the journal (%d bytes), its export, or the logs (%d lines)" % (
        len(leaked), total, journal_bytes, log_lines)]
    counts = collections.Counter(kinds[value] for value in raw)
    lines.append("  searched for: demo user password, client secret, " + ", ".join(
        "%d %s" % (count, kind) for kind, count in sorted(counts.items())))
    if short_values:
        lines.append("  (%d values shorter than 16 characters were not searched for)" % short_values)
    problems = []
    for (kind, source), hits in sorted(found.items(), key=lambda item: (item[0][0].lower(), item[0][1])):
        where, used = hits[0]
        problems.append("raw %s found in %s: %d value%s, first at %s ('%s...', %d characters)" % (
            kind, source, len(hits), "" if len(hits) == 1 else "s", where, used[:6], len(used)))
    return lines, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True, help="directory holding authledger and authledger-replay")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (journal, export, server logs)")
    args = parser.parse_args()
    authledger, replay = binaries(args.bin)
    work = tempfile.mkdtemp(prefix="authledger-load-")
    journal = os.path.join(work, "j")
    out_path, err_path = os.path.join(work, "serve.out"), os.path.join(work, "serve.err")
    server = Server(authledger, journal, log_path=out_path, err_path=err_path, extra_args=["--log-format", "json", "--log-level", "trace"],
                    env=dict(os.environ, LOG_LEVEL="trace"))
    server.start()
    base = server.base
    problems = []
    closed_at = None
    try:
        try:
            server.wait_healthy(timeout=60)
        except ServerStartError as error:
            raise SystemExit("load: %s" % error)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(args.workers + 1)
        results_queue = context.Queue()
        processes = [context.Process(target=worker_main, args=(base, number, args.seconds, barrier, results_queue))
                     for number in range(args.workers)]
        for process in processes:
            process.start()
        barrier.wait(timeout=300)
        started = time.monotonic()
        results = []
        while len(results) < len(processes):
            try:
                results.append(results_queue.get(timeout=5))
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    break
        elapsed = time.monotonic() - started
        for process in processes:
            process.join(timeout=30)
        if len(results) < len(processes):
            problems.append("%d worker processes died without a report" % (len(processes) - len(results)))
        for result in results:
            if "setup_problem" in result:
                problems.append("worker %d could not log in: %s" % (result["number"], result["setup_problem"].strip()))
        results = [result for result in results if "setup_problem" not in result]
    finally:
        if server.alive:
            found, closed_at = stop_server(server, out_path, err_path)
            problems += found

        else:
            problems.append("the server died during the load (status %s)" % server.returncode)

    # The table.
    latencies = collections.defaultdict(list)
    errors, samples, no_answer, ok = collections.Counter(), collections.defaultdict(list), collections.Counter(), collections.Counter()
    for result in results:
        for kind, values in result["latencies"].items():
            latencies[kind] += values
        errors.update(result["errors"])
        no_answer.update(result["no_answer"])
        ok.update(result["ok"])
        for kind, found in result["samples"].items():
            samples[kind] += found
    print("load test: %d workers, %.1f s of mixed traffic against %s (journal %s)" % (args.workers, elapsed if results else 0, base, journal))
    print("")
    header = "| %-20s | %-5s | %-18s | %7s | %7s | %8s | %8s | %8s | %8s | %6s |" % (
        "request", "kind", "expected", "count", "rate/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors")
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    total_requests = total_errors = 0
    for name, valid, expected, _ in KINDS:
        values = sorted(latencies[name])
        total_requests += len(values)
        total_errors += errors[name]
        rate = len(values) / elapsed if results and elapsed > 0 else 0
        print("| %-20s | %-5s | %-18s | %7d | %7.1f | %8.2f | %8.2f | %8.2f | %8.2f | %6d |" % (
            name, "valid" if valid else "bad", expected, len(values), rate, percentile(values, 0.5), percentile(values, 0.9),
            percentile(values, 0.99), values[-1] if values else float("nan"), errors[name]))
    all_values = sorted(value for values in latencies.values() for value in values)
    print("| %-20s | %-5s | %-18s | %7d | %7.1f | %8.2f | %8.2f | %8.2f | %8.2f | %6d |" % (
        "all", "", "", total_requests, total_requests / elapsed if results and elapsed > 0 else 0, percentile(all_values, 0.5),
        percentile(all_values, 0.9), percentile(all_values, 0.99), all_values[-1] if all_values else float("nan"), total_errors))
    print("(a wrong secret costs an Argon2id verification on the server: its latency is expected to be high)")
    for name, _, _, _ in KINDS:
        for sample in samples[name][:ERROR_SAMPLES]:
            print("error: %s: %s" % (name, sample))
    if sum(no_answer.values()):
        print("requests without an answer: %d" % sum(no_answer.values()))
    print("")

    # The journal.
    if closed_at is not None:
        print("server: stopped with SIGTERM, exit status %d, journal closed at #%d" % (server.returncode, closed_at))
    checks = []
    for label, result in check_journal(replay, journal):
        lines = result.output.splitlines() or [""]
        print("%s: exit %d: %s" % (label, result.returncode, lines[0] if label == "verify" else lines[-1]))
        if result.returncode != 0:
            problems.append("%s failed (exit %d): %s" % (label, result.returncode, result.output[-800:]))
        else:
            checks.append(label)
    bundle = None
    try:
        bundle = export_journal(replay, journal, work)
    except RuntimeError as error:
        problems.append(str(error))
    if results and bundle:
        totals = {
            "refreshed": ok["token: refresh"],
            "bad_token": sum(result["bad_token_sent"] for result in results),
            "token_errors": errors["token: code + PKCE"] + errors["token: refresh"] + sum(errors[kind] for kind in BAD_TOKEN_KINDS),
        }
        try:
            events = journal_events(bundle)
            if closed_at is not None and events and events[-1]["sequence"] != closed_at:
                problems.append("the server closed its journal at #%d, but it ends at #%d" % (closed_at, events[-1]["sequence"]))
            lines, found = compare_journal(events, results, totals)
            print("\n".join(lines))
            problems += found
        except (OSError, ValueError, KeyError) as error:
            problems.append("could not compare the journal with the clients: %s" % error)
    # The decision lines `--log-level trace` adds: the secrets below are searched in what the most verbose
    # level writes, not in what a quieter default leaves out.
    try:
        with open(err_path, "rb") as handle:
            decided = handle.read().count(b'"authorize decided"')
        print("logs: %d authorization decision lines (--log-level trace)" % decided)
        if ok["authorize"] and not decided:
            problems.append("the server logged no authorization decision at --log-level trace")
    except OSError as error:
        problems.append("could not read the server's log: %s" % error)
    secrets_found = None
    try:
        lines, found = check_secrets(results, journal, bundle, [("stdout", out_path), ("stderr (JSON logs)", err_path)])
        print("\n".join(lines))
        problems += found
        secrets_found = bool(found)
    except OSError as error:
        problems.append("could not search the journal and the logs for secrets: %s" % error)
    for problem in problems:
        print("problem: %s" % problem)

    passed = len(checks) == 2
    print("load: %d requests in %d s, %d errors; %s; %s" % (
        total_requests, args.seconds, total_errors,
        "verify and rebuild --check passed" if passed else "verify and rebuild --check did NOT both pass",
        {False: "no raw secret found", True: "raw secrets FOUND", None: "secrets NOT checked"}[secrets_found]))
    failed = total_errors or problems or not passed
    if args.keep or failed:
        print("kept %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
