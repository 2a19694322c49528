#!/usr/bin/env python3
"""Property-based fuzzing of a running `authledger serve`, over a real socket, with Hypothesis.

    python3 tools/fuzz_http.py --bin .build/debug [--examples 2000] [--seed S] [--workdir DIR]

Starts `authledger serve` on an empty journal (so the demo tenant applies: client demo-app / demo-secret,
user demo@example.com) on a free port, logs in and consents once to obtain a real SSO session, a browser
binding cookie and tokens, then sends generated requests to GET /authorize, POST /login, POST /consent,
POST /oauth/token, POST /oauth/revoke, /userinfo and a few other paths: random values for known and unknown
parameters, repeated and missing parameters, oversized values (up to a 1 MB query string, a 1 MB form
body, 1 MB cookies), invalid UTF-8 and malformed percent-encoding sent as raw bytes, variants of the
registered redirect URI, HTML/JS payloads, and mutations of valid requests so that login, consent, code
redemption and refresh are reached with a real interaction and session.

Every response must satisfy:
  * the server answers (no dropped connection, no hang past the timeout), is still running, and
    /healthz answers 200 after every example;
  * no 5xx status except 503;
  * a Location header points only at the registered redirect URI (followed by `?` or `#`) or at the
    server's own /login, /consent, /organization or /authorize/resume pages; a form_post page posts only to
    the registered redirect URI; an unregistered or repeated redirect_uri, or a bad client_id, never
    redirects;
  * no injected marker (`<x-fz…`, `"qfz…`, `'afz…`, …) appears unescaped in an HTML body, and no header is
    injected;
  * a redirect or form_post back to the client carries the `state` sent (as the server decodes it) and
    `iss`; a repeated /authorize parameter gets an error, never a code;
  * oversized input gets 400/413/414/431 at once; malformed HTTP framing (CL+TE, two Content-Lengths,
    HTTP/2 preface, TLS bytes, obsolete folding) gets 400;
  * tokens are issued only for the exact valid code / refresh token and client credentials; a code is
    redeemed once; a refresh never widens the scopes; an answered consent interaction issues nothing
    when resumed again;
  * a POST /oauth/token form with a repeated parameter (RFC 6749 §3.2: MUST NOT be included more than
    once) gets 400 `invalid_request` ("The parameter X is repeated.") and issues nothing: the code or
    refresh token it carried still works afterwards;
  * /userinfo answers 200 only for the issued access token, and 401 `invalid_token` for that token in a
    non-canonical spelling (`=` padding, or changed unused low bits in the signature's last character:
    RFC 7515 base64url has neither).

Redirect URIs are compared byte for byte, not by Unicode canonical equivalence; the demo tenant's one
registered URI (`http://127.0.0.1:PORT/callback`) has no canonically equivalent other spelling (only
`K`, `;` and a backquote have one among ASCII characters), so the fuzzer cannot tell the two apart.

Afterwards the server is stopped and `authledger-replay verify` and `rebuild --check` must pass on the
journal. Exits 0 when every property held, 1 otherwise. Runs are reproducible: Hypothesis is derandomized
(or seeded with --seed) and its example database is off; its working files go to the temporary directory.
"""
import argparse
import base64
import binascii
import collections
import html
import json
import os
import re
import select
import shutil
import socket
import sys
import tempfile
import time
import unicodedata
from urllib.parse import quote, quote_plus, unquote_to_bytes, urlsplit

from authledger_e2e import (AUDIENCE, CLIENT_ID, CLIENT_SECRET, DEMO_USER_ID, PASSWORD, USERNAME, Server, ServerStartError,
                            binaries, check_journal, consent_fields, demo_redirect_uri, hidden_field, install_missing,
                            login_fields)

OWN_PAGES = re.compile(r"^/(login|consent|organization|authorize/resume)\?state=[A-Za-z0-9_-]{1,64}$")
ONE_MB = 1 << 20
FORM_LIMIT = 64 * 1024  # a larger form body is refused as unreadable before its fields are looked at
REQUEST_TIMEOUT = 15.0
OVERSIZE_STATUSES = {400, 413, 414, 431}
HEADER_LIMIT = 128 * 1024  # request line and headers larger than this must be refused
# The demo client registers no logout URL: /oidc/logout may redirect nowhere outside the server.
LOGOUT_URLS = frozenset()

# What must never appear raw in an HTML body: each payload below contains at least one of these.
RAW_MARKER = re.compile(
    r"<x-fz\d|<script>alert\(fz\d|<img src=x onerror=alert\(fz\d|\"qfz\d|'afz\d|<!--fz\d|<svg/onload=fz\d", re.I)
ESCAPED_MARKER = re.compile(r"&lt;x-fz\d|&lt;script&gt;alert\(fz\d|&quot;qfz\d|&#39;afz\d")
PAYLOADS = [
    "<x-fz{n}>",
    "<script>alert(fz{n})</script>",
    "\"qfz{n} onmouseover=alert(1) x=\"",
    "'afz{n} onfocus='alert(1)",
    "\"><x-fz{n} a=\"",
    "'><img src=x onerror=alert(fz{n})>",
    "</textarea></title><x-fz{n}>",
    "<!--fz{n}-->",
    "<svg/onload=fz{n}>",
    "javascript:alert(\"qfz{n})",
    "fz{n}\r\nX-Fz-Injected: 1",
    "&lt;x-fz{n}&gt;&#34;",
]


class PropertyFailure(AssertionError):
    """A property of the server did not hold for a request."""


# ---------------------------------------------------------------------------------------------------------
# A raw HTTP/1.1 client: bytes go on the wire exactly as given (requests and http.client would normalise
# or refuse invalid UTF-8, spaces and malformed percent-escapes).

class Response:
    """A parsed HTTP response."""

    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers  # [(lowercase name, value str)]
        self.body = body
        self.elapsed = elapsed

    def header(self, name):
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name):
        return [value for key, value in self.headers if key == name]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def is_html(self):
        return "text/html" in (self.header("content-type") or "")


class NoResponse(Exception):
    """The server closed the connection, or did not answer in time."""


def http_request(port, method, target, headers=(), body=None, timeout=REQUEST_TIMEOUT, raw=None):
    """Sends one request (target and header values as bytes or str; or `raw`, the whole message) on a fresh
    connection, and reads one response."""
    def as_bytes(value):
        return value if isinstance(value, bytes) else value.encode("utf-8")

    if raw is not None:
        data = raw
    else:
        lines = [as_bytes(method) + b" " + as_bytes(target) + b" HTTP/1.1", b"Host: 127.0.0.1:%d" % port, b"Connection: close"]
        for name, value in headers:
            lines.append(as_bytes(name) + b": " + as_bytes(value))
        if body is not None:
            lines.append(b"Content-Length: %d" % len(body))
        data = b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
    start = time.monotonic()
    deadline = start + timeout
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as error:
        raise NoResponse("cannot connect: %s" % error)
    received = b""
    # Writes and reads interleaved: the server may answer (400, 413) and close before reading a large body.
    outgoing = memoryview(data)
    try:
        connection.setblocking(False)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoResponse("no complete response within %.0f s (sent %d of %d bytes, got %d)" % (
                    timeout, len(data) - len(outgoing), len(data), len(received)))
            readable, writable, _ = select.select([connection], [connection] if outgoing else [], [], remaining)
            if writable:
                try:
                    outgoing = outgoing[connection.send(outgoing[:262144]):]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    outgoing = outgoing[:0]  # the server stopped reading (closed): what it answered is still readable
            if readable:
                try:
                    chunk = connection.recv(262144)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as error:
                    if received:
                        break
                    raise NoResponse("connection error before any response: %s" % error)
                if not chunk:
                    break
                received += chunk
                if complete_response(received):
                    break
    finally:
        connection.close()
    elapsed = time.monotonic() - start
    if b"\r\n\r\n" not in received:
        raise NoResponse("connection closed without a response (%d bytes)" % len(received))
    return parse_response(received, elapsed)


def _split_head(raw):
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
    return status, headers, rest


def _dechunk(rest):
    """The body of a chunked message, or None when incomplete."""
    body = b""
    while True:
        line, separator, rest = rest.partition(b"\r\n")
        if not separator:
            return None
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            return body
        if len(rest) < size + 2:
            return None
        body += rest[:size]
        rest = rest[size + 2:]


def complete_response(raw):
    if b"\r\n\r\n" not in raw:
        return False
    status, headers, rest = _split_head(raw)
    values = dict(headers)
    if "content-length" in values:
        return len(rest) >= int(values["content-length"])
    if "chunked" in values.get("transfer-encoding", ""):
        return _dechunk(rest) is not None
    return status in (204, 304) or 100 <= status < 200


def parse_response(raw, elapsed):
    status, headers, rest = _split_head(raw)
    values = dict(headers)
    if "content-length" in values:
        body = rest[:int(values["content-length"])]
    elif "chunked" in values.get("transfer-encoding", ""):
        body = _dechunk(rest) or b""
    else:
        body = rest
    return Response(status, headers, body, elapsed)


# ---------------------------------------------------------------------------------------------------------
# Form and query encoding, and the server's own decoding (WHATWG urlencoded, as FormEncoding.parse)

def pct(value):
    """Percent-encodes everything but unreserved characters (str or bytes)."""
    return quote(value if isinstance(value, bytes) else value.encode("utf-8"), safe="-._~").encode("ascii")


RAWISH_SAFE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%\"<>")


def rawish(value):
    """Only what cannot travel in a request line is encoded: `%`, `&`, `=`, `+`, quotes and `<>` stay raw."""
    data = value if isinstance(value, bytes) else value.encode("utf-8")
    return b"".join(bytes([b]) if b in RAWISH_SAFE else b"%%%02X" % b for b in data)


def raw_bytes(value):
    """The bytes themselves, except the three that would end the request line (invalid UTF-8 stays invalid)."""
    data = value if isinstance(value, bytes) else value.encode("utf-8")
    return data.replace(b" ", b"%20").replace(b"\r", b"%0D").replace(b"\n", b"%0A")


ENCODERS = {
    "pct": pct,
    "plus": lambda v: quote_plus(v if isinstance(v, bytes) else v.encode("utf-8")).encode("ascii"),
    "rawish": rawish,
    "raw": raw_bytes,
}


def encode_pairs(pairs):
    """`pairs` of (name, value, encoding) as one query string / form body (bytes)."""
    parts = []
    for name, value, encoding in pairs:
        encoder = ENCODERS[encoding]
        if value is None:
            parts.append(encoder(name))
        else:
            parts.append(encoder(name) + b"=" + encoder(value))
    return b"&".join(parts)


def server_decode(text):
    data = text.replace(b"+", b" ")
    return unquote_to_bytes(data).decode("utf-8", "replace")


def server_parse(raw):
    """What FormEncoding.parse makes of `raw`: [(name, value)] in order, repeats kept."""
    pairs = []
    for piece in raw.split(b"&"):
        if not piece:
            continue
        name, equals, value = piece.partition(b"=")
        pairs.append((server_decode(name), server_decode(value) if equals else ""))
    return pairs


def encode_fields(fields):
    """A dict of fields as a form body, every name and value percent-encoded."""
    return encode_pairs([(name, value, "pct") for name, value in fields.items()])


def first_values(pairs):
    values = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


def repeated_names(pairs):
    """The names that occur more than once. Names are compared as Swift compares strings (by Unicode
    canonical equivalence: `é` and `e` + U+0301 are the same name), as the server's form parsing does."""
    counts = collections.Counter(unicodedata.normalize("NFC", name) for name, _ in pairs)
    return {name for name, count in counts.items() if count > 1}


# Swift's CharacterSet.whitespaces (tab and the Unicode space separators), trimmed from a presented token.
SWIFT_WHITESPACE = "\t \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"


def same_jws(presented, issued):
    """Whether `presented` is `issued` with only its signature's encoding changed (padding, unused low bits)."""
    def decode(segment):
        segment = segment.rstrip("=")
        try:
            return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (ValueError, binascii.Error):
            return None
    presented_parts, issued_parts = presented.split("."), issued.split(".")
    return (len(presented_parts) == len(issued_parts) == 3 and presented_parts[:2] == issued_parts[:2]
            and decode(presented_parts[2]) == decode(issued_parts[2]))


# ---------------------------------------------------------------------------------------------------------
# The fuzzer: sends requests, checks the universal properties, keeps the statistics

class Jar:
    """Cookies of one browser."""

    def __init__(self, cookies=None):
        self.cookies = dict(cookies or {})

    def header(self):
        return "; ".join("%s=%s" % item for item in self.cookies.items())

    def update(self, response):
        for value in response.header_values("set-cookie"):
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";")[0]

    def copy(self):
        return Jar(self.cookies)


class Fuzzer:
    """Sends requests to the server, checks what every response must satisfy, and keeps the statistics."""

    def __init__(self, server):
        self.server = server
        self.port = server.port
        self.registered = demo_redirect_uri(server.base)
        self.issuer = server.base
        self.inputs = collections.Counter()      # fuzzed requests per endpoint
        self.examples = collections.Counter()    # Hypothesis examples per strategy
        # The first failure of each strategy, as it happened. The server is stateful (its journal, the login
        # throttle's window, consents), so when Hypothesis replays a failing example to shrink it, the replay
        # may fail elsewhere or not at all, and Hypothesis then reports only that the replay differed; this
        # keeps what actually failed.
        self.first_failures = {}
        self.statuses = collections.defaultdict(collections.Counter)
        self.marker_number = 0
        self.html_responses = 0
        self.escaped_reflections = 0
        self.main = Jar()
        self.access_token = None

    # -- helpers ----------------------------------------------------------------------------------------

    def payload(self, template):
        self.marker_number += 1
        return template.replace("{n}", str(self.marker_number))

    def endpoint_of(self, target):
        path = target.split(b"?")[0] if isinstance(target, bytes) else target.split("?")[0].encode()
        return path.decode("latin-1")[:40] or "(empty)"

    def send(self, method, target, headers=(), body=None, jar=None, label=None, fuzzed=True, raw=None):
        """Sends a request (or `raw`, a whole message) and checks the properties every response must have."""
        if raw is not None:
            return self._send_raw(raw, label)
        all_headers = list(headers)
        if jar is not None and jar.cookies and not any(name.lower() == "cookie" for name, _ in all_headers):
            all_headers.append(("Cookie", jar.header()))
        if body is not None and not any(name.lower() == "content-type" for name, _ in all_headers):
            all_headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        endpoint = label or "%s %s" % (method if isinstance(method, str) else method.decode("latin-1"), self.endpoint_of(target))
        description = self.describe(method, target, all_headers, body)
        try:
            response = http_request(self.port, method, target, all_headers, body)
        except NoResponse as error:
            raise PropertyFailure("%s: no response: %s\n  request: %s\n  server alive: %s" % (
                endpoint, error, description, self.server.alive))
        if fuzzed:
            self.inputs[endpoint] += 1
            self.statuses[endpoint][response.status] += 1
        self.check_response(endpoint, description, response)
        # Far beyond any limit of the server (8 KiB query, 64 KiB form, its HTTP parser's header limit):
        # refused at once with a 4xx naming the problem, never processed, never a hang.
        if len(target) + sum(len(value) for _, value in all_headers) > HEADER_LIMIT and response.status not in OVERSIZE_STATUSES:
            self.fail(endpoint, description, response, "an oversized request line or header was not refused (400/413/414/431)")
        if jar is not None:
            jar.update(response)
        return response

    def _send_raw(self, message, label):
        description = repr(message[:300])
        try:
            response = http_request(self.port, None, None, raw=message)
        except NoResponse as error:
            raise PropertyFailure("%s: no response: %s\n  request: %s\n  server alive: %s" % (
                label, error, description, self.server.alive))
        self.inputs[label] += 1
        self.statuses[label][response.status] += 1
        self.check_response(label, description, response)
        return response

    @staticmethod
    def describe(method, target, headers, body):
        def short(value, limit=300):
            text = value if isinstance(value, str) else value.decode("latin-1")
            return repr(text if len(text) <= limit else text[:limit] + "…(%d bytes)" % len(text))
        parts = ["%s %s" % (method if isinstance(method, str) else method.decode(), short(target))]
        parts += ["%s: %s" % (name, short(value, 120)) for name, value in headers]
        if body is not None:
            parts.append("body %s" % short(body))
        return "\n    ".join(parts)

    def fail(self, endpoint, description, response, reason):
        raise PropertyFailure("%s: %s\n  request: %s\n  response: %d %s\n  %s" % (
            endpoint, reason, description, response.status,
            {k: v[:200] for k, v in response.headers if k in ("location", "content-type", "www-authenticate")},
            response.text[:600].replace("\n", "\n  ")))

    def check_response(self, endpoint, description, response):
        status = response.status
        if status >= 500 and status != 503:
            self.fail(endpoint, description, response, "5xx status")
        for name, value in response.headers:
            if name.startswith("x-fz") or "\r" in value or "\n" in value:
                self.fail(endpoint, description, response, "header injection: %s" % name)
        for location in response.header_values("location"):
            self.check_location(endpoint, description, response, location)
        if response.is_html:
            match = RAW_MARKER.search(response.text)
            if match:
                start = max(0, match.start() - 120)
                self.fail(endpoint, description, response, "marker reflected unescaped in HTML: …%s…" % (
                    response.text[start:match.end() + 60]))
            self.html_responses += 1
            if ESCAPED_MARKER.search(response.text):
                self.escaped_reflections += 1
            if "default-src 'none'" not in (response.header("content-security-policy") or ""):
                self.fail(endpoint, description, response, "HTML without the Content-Security-Policy")
            for action in re.findall(r'<form method="post" action="([^"]*)"', response.text):
                target = html.unescape(action)
                if target not in ("/login", "/consent", "/organization", "/logout", self.registered):
                    self.fail(endpoint, description, response, "form posts to %r" % target)

    def check_location(self, endpoint, description, response, location):
        if not 300 <= response.status < 400:
            self.fail(endpoint, description, response, "Location on a non-redirect")
        if any(ord(c) < 0x21 or ord(c) > 0x7e for c in location):
            self.fail(endpoint, description, response, "Location with raw control, space or non-ASCII characters")
        if OWN_PAGES.match(location):
            return
        for separator in ("?", "#"):
            if location.startswith(self.registered + separator):
                parts = urlsplit(location)
                if (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:%d" % self.port, "/callback"):
                    return
        self.fail(endpoint, description, response, "redirect to %r (not the registered URI %r)" % (location, self.registered))

    def check_alive(self):
        if not self.server.alive:
            raise PropertyFailure("the server process exited with %s" % self.server.returncode)
        try:
            response = http_request(self.port, "GET", "/healthz", timeout=10)
        except NoResponse as error:
            raise PropertyFailure("/healthz did not answer after the example: %s" % error)
        if response.status != 200:
            raise PropertyFailure("/healthz answered %d after the example" % response.status)

    # -- the real flow (setup, and the starting points of mutations) ----------------------------------------

    def authorize_query(self, extra=(), scope="openid profile", state="st"):
        pairs = [("response_type", "code"), ("client_id", CLIENT_ID), ("redirect_uri", self.registered),
                 ("scope", scope), ("state", state)] + list(extra)
        return [(name, value, "pct") for name, value in pairs]

    def drive(self, jar, response, accept=True, limit=8):
        """Follows the flow from a response (login with the demo user, accept consent) to the final answer."""
        for _ in range(limit):
            location = response.header("location") or ""
            if response.status != 302 or not location.startswith("/"):
                return response
            page = self.send("GET", location, jar=jar, fuzzed=False)
            if location.startswith("/login"):
                form = encode_fields(login_fields(page.text))
                response = self.send("POST", "/login", body=form, jar=jar, fuzzed=False)
            elif location.startswith("/consent") and page.status == 200:
                form = encode_fields(consent_fields(page.text, "accept" if accept else "deny"))
                response = self.send("POST", "/consent", body=form, jar=jar, fuzzed=False)
            else:
                response = page
        return response

    def code_from(self, response):
        location = response.header("location") or ""
        match = re.search(r"[?&]code=([A-Za-z0-9_-]+)", location)
        if not match:
            raise PropertyFailure("the valid flow did not end in a code: %d %s %s" % (response.status, location, response.text[:300]))
        return match.group(1)

    def fresh_code(self, scope="openid profile", audience=None):
        """A code for the demo user through the main browser (session and consent already there)."""
        extra = [("audience", audience)] if audience else []
        response = self.send("GET", b"/authorize?" + encode_pairs(self.authorize_query(extra, scope=scope)), jar=self.main, fuzzed=False)
        return self.code_from(self.drive(self.main, response))

    def exchange(self, code):
        body = encode_pairs([("grant_type", "authorization_code", "pct"), ("client_id", CLIENT_ID, "pct"),
                             ("client_secret", CLIENT_SECRET, "pct"), ("redirect_uri", self.registered, "pct"), ("code", code, "pct")])
        response = self.send("POST", "/oauth/token", body=body, fuzzed=False)
        if response.status != 200:
            raise PropertyFailure("a valid code exchange failed: %d %s" % (response.status, response.text[:300]))
        return json.loads(response.body)

    def setup(self):
        """Logs the main browser in once and consents for the scopes the examples use."""
        first = self.send("GET", b"/authorize?" + encode_pairs(self.authorize_query()), jar=self.main, fuzzed=False)
        self.code_from(self.drive(self.main, first))
        if "al_session" not in self.main.cookies:
            raise SystemExit("fuzz: the demo login did not give a session cookie")
        self.fresh_code(scope="openid profile offline_access read:messages", audience=AUDIENCE)
        tokens = self.exchange(self.fresh_code())
        self.access_token = tokens["access_token"]


# ---------------------------------------------------------------------------------------------------------
# Hypothesis strategies and tests

def build_tests(fuzzer, st):
    """The fuzz tests: (name, weight, function of a Hypothesis `data` object)."""
    reg = fuzzer.registered
    port = fuzzer.port
    host = "127.0.0.1:%d" % port

    redirect_variants = [
        reg, reg.upper(), reg.replace("http:", "HTTP:"), reg.replace("/callback", "/Callback"), reg + "/", reg + "//",
        reg + "/../evil", "http://%s/evil/../callback" % host, "http://%s/./callback" % host, reg + "/..%2Fevil",
        "http://%s/%%2e%%2e/callback" % host, reg + "@evil.example", "http://%s@evil.example/callback" % host,
        "http://evil.example@%s/callback" % host, reg + "%40evil.example", "http://%s/%%63allback" % host,
        quote(reg, safe=""), reg + "%00", reg + "%0d%0aX-Fz-Injected:%201", reg + "?x=1", reg + "?", reg + "&x=1",
        reg + "#", reg + "#frag", "http://127.0.0.1:80/callback", "http://127.0.0.1/callback",
        "http://localhost:%d/callback" % port, "http://127.0.0.1:0%d/callback" % port, "http://[::1]:%d/callback" % port,
        "https://%s/callback" % host, " " + reg, reg + " ", reg + "\t", reg + "\n", reg + "\u0301", reg.replace("k", "\u212a"),
        reg.replace("http", "\uff48ttp"), reg + "\u200b", "//evil.example/callback", "/callback", "callback",
        "javascript:alert(\"qfz0)//", "data:text/html,<x-fz0>", "http://%s\\@evil.example/callback" % host,
        reg + "\\..\\evil", "https://evil.example/callback", "http://127.0.0.1.evil.example:%d/callback" % port,
        "http://%s/callback?redirect=https://evil.example" % host, reg + ";x", reg + "%3Fx=1", reg + "%23frag",
    ]
    pieces = [
        "", CLIENT_ID, "code", "token", "id_token", "id_token token", "openid", "openid profile", "openid email offline_access",
        "none", "login", "consent", "none login", "S256", "plain", "query", "fragment", "form_post", "-1", "0", "315360001",
        "99999999999999999999", "9223372036854775808", "%00", "%ff%fe", "%", "%z", "%%", "+", "&", "=", "&&==", "\x00", "💥",
        "é", "e\u0301", AUDIENCE, "https://evil.example", "read:messages", "offline_access", "Username-Password-Authentication",
        "org_x", "inv_x", "a" * 43, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "authorization_code", "refresh_token",
        USERNAME, PASSWORD, "accept", "deny", "access_token", "null", "[]", "{}", "true", "\ufeff", "\u202e", "\ud7ff",
    ]
    known = ["response_type", "client_id", "redirect_uri", "scope", "state", "audience", "resource", "connection", "prompt",
             "organization", "invitation", "dpop_jkt", "code_challenge", "code_challenge_method", "nonce", "response_mode",
             "max_age", "login_hint"]
    form_names = ["state", "csrf", "username", "password", "action", "organization", "code", "grant_type", "client_id",
                  "client_secret", "redirect_uri", "code_verifier", "refresh_token", "scope", "token", "token_type_hint", "resource"]

    payload = st.sampled_from(PAYLOADS).map(fuzzer.payload)
    big = st.builds(lambda size, char: char * size, st.sampled_from([300, 1025, 4096, 8200, 70000, ONE_MB]),
                    st.sampled_from(["A", "%", "é", "<"]))
    text_value = st.one_of(
        st.sampled_from(pieces), payload, st.sampled_from(redirect_variants), st.text(max_size=24),
        st.lists(st.sampled_from(pieces), min_size=2, max_size=3).map("".join), st.binary(max_size=16),
    )
    value = st.one_of(text_value, text_value, text_value, text_value, big)
    encoding = st.sampled_from(["pct", "pct", "plus", "rawish", "rawish", "raw"])
    unknown_name = st.one_of(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_[]", min_size=1, max_size=12), payload,
                             st.binary(min_size=1, max_size=6))

    def pairs_strategy(names, max_size=14):
        name = st.one_of(st.sampled_from(names), st.sampled_from(names), unknown_name)
        return st.lists(st.tuples(name, st.one_of(value, st.none()), encoding), max_size=max_size)

    def cookie_headers(data, jar):
        """Either the jar's cookies, or hostile cookies instead / as well."""
        return cookie_choice(data, jar)[0]

    def cookie_choice(data, jar):
        """(headers, which kind): the jar's cookies, none, junk, a huge one, or repeated names."""
        choice = data.draw(st.sampled_from(["jar", "jar", "jar", "none", "junk", "huge", "dup"]), label="cookies")
        if choice == "jar":
            return ([("Cookie", jar.header())] if jar.cookies else []), choice
        if choice == "none":
            return [("Cookie", "")], choice
        if choice == "huge":
            size = data.draw(st.sampled_from([8000, 70000, ONE_MB]), label="cookie size")
            return [("Cookie", "al_session=" + "C" * size + ("; " + jar.header() if jar.cookies else ""))], choice
        if choice == "dup":
            return [("Cookie", "al_session=x; al_session=%s; al_bind=y; al_bind=%s" % (
                jar.cookies.get("al_session", ""), jar.cookies.get("al_bind", "")))], choice
        junk = data.draw(st.one_of(payload, st.binary(max_size=80), st.text(max_size=40)), label="cookie")
        return [("Cookie", raw_bytes(junk if isinstance(junk, bytes) else junk.encode()).replace(b"\r", b"").replace(b"\n", b""))], choice

    def check_authorize(response, query):
        """Authorize-specific properties, from the query as the server parses it."""
        pairs = server_parse(query)
        values = first_values(pairs)
        counts = collections.Counter(name for name, _ in pairs)
        redirected = response.status in (301, 302, 303, 307, 308) and not (response.header("location") or "/").startswith("/")
        form_post = response.status == 200 and response.is_html and '<form method="post" action="%s"' % html.escape(reg) in response.text
        if not (redirected or form_post):
            return
        reasons = []
        if counts["client_id"] != 1 or values.get("client_id") != CLIENT_ID:
            reasons.append("client_id is not exactly %r once" % CLIENT_ID)
        if counts["redirect_uri"] > 1:
            reasons.append("redirect_uri is repeated")
        elif values.get("redirect_uri") and values["redirect_uri"] != reg:
            reasons.append("redirect_uri %r is not the registered one" % values["redirect_uri"])
        if reasons:
            raise PropertyFailure("GET /authorize redirected although %s\n  query: %r\n  response: %d %s" % (
                "; ".join(reasons), query[:400], response.status, response.header("location") or response.text[:300]))
        location = response.header("location") or ""
        if redirected:
            returned = first_values(server_parse(re.split(r"[?#]", location, maxsplit=1)[1].encode("ascii")))
        else:
            returned = {}
            for name in ("state", "iss", "code", "error"):
                found = hidden_field(response.text, name)
                if found is not None:
                    returned[name] = found
        if returned.get("iss") != fuzzer.issuer:
            raise PropertyFailure("GET /authorize answered with iss %r, not %r\n  query: %r" % (
                returned.get("iss"), fuzzer.issuer, query[:400]))
        if returned.get("state") != values.get("state"):
            raise PropertyFailure("GET /authorize returned state %r for %r\n  query: %r\n  response: %s" % (
                returned.get("state"), values.get("state"), query[:400], location or response.text[:400]))
        repeated = {name for name in known if counts[name] > 1}
        if repeated and ("code=" in location or "access_token=" in location or 'name="code"' in response.text):
            raise PropertyFailure("GET /authorize issued a code although %s is repeated\n  query: %r\n  response: %s" % (
                sorted(repeated), query[:400], location))

    # -- GET /authorize ---------------------------------------------------------------------------------

    def authorize_random(data):
        pairs = data.draw(pairs_strategy(known + form_names), label="pairs")
        query = encode_pairs(pairs)
        if data.draw(st.booleans(), label="valid client first"):
            query = encode_pairs(fuzzer.authorize_query()[:3]) + (b"&" + query if query else b"")
        jar = fuzzer.main.copy() if data.draw(st.booleans(), label="with session") else Jar()
        response = fuzzer.send("GET", b"/authorize?" + query, headers=cookie_headers(data, jar), jar=jar)
        check_authorize(response, query)
        expect_oversize(response, len(query) > 8 * 1024 or query.count(b"&") >= 64, "GET /authorize")

    def authorize_mutated(data):
        scope = data.draw(st.sampled_from(["openid profile", "openid", "profile", "openid profile email"]), label="scope")
        pairs = fuzzer.authorize_query(scope=scope, state=fuzzer.payload(data.draw(st.sampled_from(PAYLOADS), label="state")))
        pairs.append(("nonce", fuzzer.payload(data.draw(st.sampled_from(PAYLOADS), label="nonce")), "pct"))
        # Where the unmutated request leads: a code (session), the login page (fresh browser), consent.
        flow = data.draw(st.sampled_from(["session", "fresh", "consent", "login-hint"]), label="flow")
        if flow == "consent":
            pairs.append(("prompt", "consent", "pct"))
        elif flow == "login-hint":
            pairs.append(("login_hint", fuzzer.payload(data.draw(st.sampled_from(PAYLOADS), label="hint")), "pct"))
        pairs += data.draw(st.lists(st.tuples(st.sampled_from(known), text_value, encoding), max_size=2), label="extra known")
        operation = data.draw(st.sampled_from(
            ["replace", "delete", "duplicate", "unknown", "redirect", "redirect", "marker", "mode", "prompt", "encoding"]), label="op")
        index = data.draw(st.integers(0, len(pairs) - 1), label="index")
        name, old, old_encoding = pairs[index]
        if operation == "replace":
            pairs[index] = (name, data.draw(value, label="value"), data.draw(encoding, label="enc"))
        elif operation == "delete":
            del pairs[index]
        elif operation == "duplicate":
            again = data.draw(st.one_of(st.just(old), text_value), label="dup value")
            pairs.insert(data.draw(st.integers(0, len(pairs)), label="at"), (name, again, data.draw(encoding, label="enc")))
        elif operation == "unknown":
            pairs += data.draw(st.lists(st.tuples(unknown_name, value, encoding), min_size=1, max_size=4), label="unknown")
        elif operation == "redirect":
            variant = data.draw(st.sampled_from(redirect_variants), label="redirect_uri")
            pairs[2] = ("redirect_uri", variant, data.draw(encoding, label="enc"))
        elif operation == "marker":
            target = data.draw(st.sampled_from(["login_hint", "audience", "connection", "organization", "invitation", "prompt",
                                                "code_challenge", "dpop_jkt", "max_age", "response_mode", "scope", "resource"]),
                               label="param")
            marker = fuzzer.payload(data.draw(st.sampled_from(PAYLOADS), label="marker"))
            pairs = [p for p in pairs if p[0] != target] + [(target, marker, "pct")]
        elif operation == "mode":
            mode = data.draw(st.sampled_from(["form_post", "fragment", "query", "web_message"]), label="mode")
            pairs.append(("response_mode", mode, "pct"))
        elif operation == "prompt":
            prompt = data.draw(st.sampled_from(["login", "consent", "none", "login consent", "select_account"]), label="prompt")
            pairs.append(("prompt", prompt, "pct"))
            if data.draw(st.booleans(), label="login_hint"):
                pairs.append(("login_hint", fuzzer.payload(data.draw(st.sampled_from(PAYLOADS), label="hint")), "pct"))
        else:
            pairs = [(n, v, data.draw(encoding, label="enc %s" % n)) for n, v, _ in pairs]
        query = encode_pairs(pairs)
        jar = fuzzer.main.copy() if flow in ("session", "consent") else Jar()
        response = fuzzer.send("GET", b"/authorize?" + query, jar=jar)
        check_authorize(response, query)
        expect_oversize(response, len(query) > 8 * 1024 or query.count(b"&") >= 64, "GET /authorize")
        # Deeper: the login or consent page the request led to, with its real interaction.
        location = response.header("location") or ""
        if response.status == 302 and location.startswith(("/login", "/consent", "/organization")):
            page = fuzzer.send("GET", location, jar=jar)
            if location.startswith("/consent") and page.status == 200 and data.draw(st.booleans(), label="answer consent"):
                answer = data.draw(st.sampled_from(["accept", "deny"]), label="answer")
                form = encode_fields(consent_fields(page.text, answer))
                final = fuzzer.drive(jar, fuzzer.send("POST", "/consent", body=form, jar=jar))
                check_authorize(final, query)

    # -- POST /login ------------------------------------------------------------------------------------

    def open_interaction(jar, extra=()):
        """A real login page for a fresh browser: its state and csrf fields."""
        response = fuzzer.send("GET", b"/authorize?" + encode_pairs(fuzzer.authorize_query(extra)), jar=jar, fuzzed=False)
        location = response.header("location") or ""
        if not location.startswith(("/login", "/consent")):
            raise PropertyFailure("a valid authorize did not lead to a page: %d %s" % (response.status, location))
        page = fuzzer.send("GET", location, jar=jar, fuzzed=False)
        return hidden_field(page.text, "state"), hidden_field(page.text, "csrf")

    def mutate_form(data, base, names):
        pairs = [(n, v, "pct") for n, v in base]
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            operation = data.draw(st.sampled_from(["replace", "delete", "duplicate", "unknown", "marker", "encoding", "big"]), label="op")
            if not pairs and operation in ("replace", "delete", "duplicate", "marker", "big"):
                operation = "unknown"
            index = data.draw(st.integers(0, max(0, len(pairs) - 1)), label="index")
            if operation == "replace":
                pairs[index] = (pairs[index][0], data.draw(value, label="value"), data.draw(encoding, label="enc"))
            elif operation == "delete":
                del pairs[index]
            elif operation == "duplicate":
                again = data.draw(st.one_of(st.just(pairs[index][1]), text_value), label="dup value")
                pairs.insert(data.draw(st.integers(0, len(pairs)), label="at"), (pairs[index][0], again, data.draw(encoding, label="enc")))
            elif operation == "unknown":
                pairs += data.draw(st.lists(st.tuples(st.one_of(unknown_name, st.sampled_from(names)), value, encoding),
                                            min_size=1, max_size=3), label="added")
            elif operation == "marker":
                pairs[index] = (pairs[index][0], fuzzer.payload(data.draw(st.sampled_from(PAYLOADS), label="marker")), "pct")
            elif operation == "encoding":
                pairs = [(n, v, data.draw(encoding, label="enc")) for n, v, _ in pairs]
            else:
                pairs[index] = (pairs[index][0], data.draw(big, label="big"), "pct")
        return pairs

    def login(data):
        jar = Jar()
        extra = [("login_hint", fuzzer.payload(data.draw(st.sampled_from(PAYLOADS), label="login_hint")))] \
            if data.draw(st.booleans(), label="hint") else []
        state, csrf = open_interaction(jar, extra)
        username = data.draw(st.one_of(st.just(USERNAME), payload, text_value), label="username")
        password = data.draw(st.one_of(st.just(PASSWORD), text_value), label="password")
        base = [("state", state), ("csrf", csrf), ("username", username), ("password", password)]
        pairs = mutate_form(data, base, form_names) if data.draw(st.integers(0, 4), label="mutate") else [(n, v, "pct") for n, v in base]
        body = encode_pairs(pairs)
        response = fuzzer.send("POST", "/login", body=body, headers=cookie_headers(data, jar))
        expect_oversize(response, len(body) > FORM_LIMIT, "POST /login")
        if response.status == 302:
            fields = first_values(server_parse(body))
            if (fields.get("state"), fields.get("csrf")) != (state, csrf) or fields.get("password") != PASSWORD \
                    or fields.get("username", "").lower() != USERNAME and fields.get("username") != DEMO_USER_ID:
                raise PropertyFailure("POST /login succeeded without the right state, csrf and credentials: %r -> %s" % (
                    body[:300], response.header("location")))
            fuzzer.drive(jar, response)

    # -- POST /consent ----------------------------------------------------------------------------------

    def consent(data):
        jar = fuzzer.main.copy()
        state, csrf = open_interaction(jar, [("prompt", "consent")])
        action = data.draw(st.one_of(st.sampled_from(["accept", "deny"]), text_value), label="action")
        base = [("state", state), ("csrf", csrf), ("action", action)]
        pairs = mutate_form(data, base, form_names) if data.draw(st.integers(0, 3), label="mutate") else [(n, v, "pct") for n, v in base]
        body = encode_pairs(pairs)
        headers, cookies = cookie_choice(data, jar)
        response = fuzzer.send("POST", "/consent", body=body, headers=headers, jar=jar)
        expect_oversize(response, len(body) > FORM_LIMIT, "POST /consent")
        if response.status == 302:
            fields = first_values(server_parse(body))
            if (fields.get("state"), fields.get("csrf")) != (state, csrf):
                raise PropertyFailure("POST /consent was answered without the right state and csrf: %r" % body[:300])
            if cookies != "jar":
                return  # without the session cookie the browser is sent back to /authorize/resume, to log in
            if fields.get("action") not in ("accept", "deny"):
                raise PropertyFailure("POST /consent accepted action %r: %r" % (fields.get("action"), body[:300]))
            final = fuzzer.drive(jar, response)
            location = final.header("location") or ""
            wanted = "code=" if fields["action"] == "accept" else "error=access_denied"
            if wanted not in location:
                raise PropertyFailure("consent %s ended in %d %s" % (fields["action"], final.status, location))
            # An interaction is answered once: resuming it again issues nothing.
            again = fuzzer.send("GET", response.header("location"), jar=jar)
            if "code=" in (again.header("location") or "") or again.status == 200 and 'name="code"' in again.text:
                raise PropertyFailure("a completed interaction issued a second code: %s" % again.header("location"))

    # -- POST /oauth/token ------------------------------------------------------------------------------

    def token_random(data):
        pairs = data.draw(pairs_strategy(form_names + ["client_id", "client_secret", "grant_type"]), label="pairs")
        if data.draw(st.booleans(), label="valid client"):
            pairs = [("client_id", CLIENT_ID, "pct"), ("client_secret", CLIENT_SECRET, "pct")] + pairs
        body = encode_pairs(pairs)
        headers = data.draw(st.lists(st.sampled_from([
            ("Authorization", "Basic " + "ZGVtby1hcHA6ZGVtby1zZWNyZXQ="), ("Authorization", "Basic %%%"), ("Authorization", "Bearer x"),
            ("DPoP", "a.b.c"), ("DPoP", "eyJhbGciOiJub25lIn0.e30."), ("Content-Type", "application/json"),
            ("Content-Type", "multipart/form-data; boundary=x"), ("Authorization", "Basic " + "A" * 5000)]), max_size=2), label="headers")
        response = fuzzer.send("POST", "/oauth/token", headers=headers, body=body)
        expect_oversize(response, len(body) > FORM_LIMIT, "POST /oauth/token")
        if response.status == 200:
            raise PropertyFailure("POST /oauth/token issued tokens for a random request: %r" % body[:300])
        expect_json_error(response, "POST /oauth/token")
        if repeated_names(server_parse(body)) and len(body) <= FORM_LIMIT:
            expect_repeat_refused(response, body)

    def token_code(data):
        code = fuzzer.fresh_code()
        base = [("grant_type", "authorization_code"), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET),
                ("redirect_uri", reg), ("code", code)]
        pairs = mutate_form(data, base, form_names)
        if data.draw(st.booleans(), label="redirect variant"):
            pairs = [(n, data.draw(st.sampled_from(redirect_variants), label="redirect_uri") if n == "redirect_uri" else v, e)
                     for n, v, e in pairs]
        headers = data.draw(st.lists(st.sampled_from([("Authorization", "Basic ZGVtby1hcHA6ZGVtby1zZWNyZXQ="), ("DPoP", "x.y.z")]),
                                     max_size=1), label="headers")
        body = encode_pairs(pairs)
        response = fuzzer.send("POST", "/oauth/token", headers=headers, body=body)
        expect_oversize(response, len(body) > FORM_LIMIT, "POST /oauth/token")
        parsed = server_parse(body)
        if repeated_names(parsed) and len(body) <= FORM_LIMIT:
            expect_repeat_refused(response, body)
            expect_still_valid(dict(base), "the code", body)
            return
        fields = first_values(parsed)
        exact = (fields.get("grant_type") == "authorization_code" and fields.get("client_id") == CLIENT_ID
                 and fields.get("client_secret") == CLIENT_SECRET and fields.get("redirect_uri") == reg
                 and fields.get("code") == code and "code_verifier" not in fields and not headers)
        if response.status == 200:
            if not exact:
                raise PropertyFailure("POST /oauth/token issued tokens for a mutated code exchange\n  body: %r\n  headers: %r" % (
                    body[:500], headers))
            replay = fuzzer.send("POST", "/oauth/token", headers=headers, body=body)
            if replay.status == 200:
                raise PropertyFailure("a code was redeemed twice: %r" % body[:400])
        else:
            expect_json_error(response, "POST /oauth/token")
            if exact and len(body) <= FORM_LIMIT:
                raise PropertyFailure("a valid code exchange (extra unknown parameters only) was refused: %d %s\n  body: %r" % (
                    response.status, response.text[:300], body[:500]))

    def token_refresh(data):
        tokens = fuzzer.exchange(fuzzer.fresh_code(scope="openid profile offline_access read:messages", audience=AUDIENCE))
        refresh, granted = tokens["refresh_token"], set(tokens["scope"].split(" "))
        base = [("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("refresh_token", refresh)]
        if data.draw(st.booleans(), label="scope"):
            base.append(("scope", data.draw(st.sampled_from(["openid", "openid profile", "openid email", "read:messages write:messages",
                                                             "openid  profile", " openid", "offline_access"]), label="scope value")))
        pairs = mutate_form(data, base, form_names) if data.draw(st.integers(0, 3), label="mutate") else [(n, v, "pct") for n, v in base]
        body = encode_pairs(pairs)
        response = fuzzer.send("POST", "/oauth/token", body=body)
        if repeated_names(server_parse(body)) and len(body) <= FORM_LIMIT:
            expect_repeat_refused(response, body)
            expect_still_valid(dict(base[:4]), "the refresh token", body)
            return
        if response.status == 200:
            fields = first_values(server_parse(body))
            if (fields.get("grant_type"), fields.get("client_id"), fields.get("client_secret"), fields.get("refresh_token")) != \
                    ("refresh_token", CLIENT_ID, CLIENT_SECRET, refresh):
                raise PropertyFailure("a mutated refresh request issued tokens: %r" % body[:400])
            scopes = set(json.loads(response.body).get("scope", "").split(" ")) - {""}
            if not scopes <= granted:
                raise PropertyFailure("a refresh widened the scopes %s to %s: %r" % (sorted(granted), sorted(scopes), body[:400]))
        else:
            expect_json_error(response, "POST /oauth/token")

    # -- POST /authorize, /oauth/par, /oauth/introspect, /oidc/logout ------------------------------------

    new_names = ["request", "request_uri", "claims", "id_token_hint", "display", "ui_locales", "claims_locales", "acr_values",
                 "client_assertion", "client_assertion_type", "post_logout_redirect_uri", "token", "token_type_hint"]

    def authorize_post(data):
        """POST /authorize (OIDC Core §3.1.2.1): the same properties as GET, the parameters in a form body."""
        pairs = data.draw(pairs_strategy(known + new_names), label="pairs")
        body = encode_pairs(pairs)
        if data.draw(st.booleans(), label="valid client first"):
            body = encode_pairs(fuzzer.authorize_query()[:3]) + (b"&" + body if body else b"")
        jar = fuzzer.main.copy() if data.draw(st.booleans(), label="with session") else Jar()
        content_type = data.draw(st.sampled_from(["application/x-www-form-urlencoded"] * 4 + ["application/json", "text/plain"]),
                                 label="content type")
        response = fuzzer.send("POST", "/authorize", headers=[("Content-Type", content_type)] + cookie_headers(data, jar), body=body, jar=jar)
        if content_type != "application/x-www-form-urlencoded":
            if response.status not in (415,) + tuple(OVERSIZE_STATUSES):
                raise PropertyFailure("POST /authorize with %s answered %d, expected 415" % (content_type, response.status))
            return
        check_authorize(response, body)
        expect_oversize(response, len(body) > 8 * 1024, "POST /authorize")

    def par(data):
        """POST /oauth/par (RFC 9126): never a request_uri for a request the rules refuse or an unauthenticated client."""
        pairs = data.draw(pairs_strategy(known + new_names), label="pairs")
        authenticated = data.draw(st.booleans(), label="client authenticated")
        if authenticated:
            pairs = [("client_id", CLIENT_ID, "pct"), ("client_secret", CLIENT_SECRET, "pct")] + pairs
        body = encode_pairs(pairs)
        response = fuzzer.send("POST", "/oauth/par", body=body)
        expect_oversize(response, len(body) > 8 * 1024, "POST /oauth/par")
        if response.status == 201:
            values = first_values(server_parse(body))
            answer = json.loads(response.body)
            if not str(answer.get("request_uri", "")).startswith("urn:ietf:params:oauth:request_uri:") or answer.get("expires_in") != 60:
                raise PropertyFailure("POST /oauth/par answered 201 without a request_uri: %r" % response.body[:200])
            if values.get("redirect_uri") not in (None, reg) or values.get("client_id") not in (None, CLIENT_ID):
                raise PropertyFailure("POST /oauth/par accepted a redirect_uri or client_id that is not registered: %r" % body[:400])
        elif response.status not in (413, 415):
            expect_json_error(response, "POST /oauth/par")

    def introspect(data):
        """POST /oauth/introspect (RFC 7662): nothing said about any token to an unauthenticated caller."""
        token = data.draw(st.one_of(text_value, st.just("<own access token>")), label="token")
        if token == "<own access token>":
            token = fuzzer.exchange(fuzzer.fresh_code())["access_token"]
        base = [("token", token)]
        authenticated = data.draw(st.booleans(), label="client authenticated")
        if authenticated:
            base = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)] + base
        pairs = mutate_form(data, base, form_names + new_names) if data.draw(st.integers(0, 2), label="mutate") else [(n, v, "pct") for n, v in base]
        body = encode_pairs(pairs)
        response = fuzzer.send("POST", "/oauth/introspect", body=body)
        expect_oversize(response, len(body) > FORM_LIMIT, "POST /oauth/introspect")
        if response.status == 200:
            values = first_values(server_parse(body))
            if values.get("client_secret") != CLIENT_SECRET or values.get("client_id") != CLIENT_ID:
                raise PropertyFailure("POST /oauth/introspect answered 200 to a caller that did not authenticate: %r" % body[:300])
        else:
            expect_json_error(response, "POST /oauth/introspect")

    def logout(data):
        """GET/POST /oidc/logout: never a redirect anywhere but a registered logout URL, no session ended by a GET without a hint."""
        pairs = data.draw(pairs_strategy(["id_token_hint", "post_logout_redirect_uri", "state", "client_id", "csrf"]), label="pairs")
        if data.draw(st.booleans(), label="registered client"):
            pairs = [("client_id", CLIENT_ID, "pct")] + pairs
        jar = fuzzer.main.copy() if data.draw(st.booleans(), label="with session") else Jar()
        query = encode_pairs(pairs)
        method = data.draw(st.sampled_from(["GET", "POST"]), label="method")
        path = data.draw(st.sampled_from(["/oidc/logout", "/logout"]), label="path")
        if method == "GET":
            response = fuzzer.send("GET", path.encode() + b"?" + query, headers=cookie_headers(data, jar), jar=jar)
            expect_oversize(response, len(query) > 8 * 1024 or query.count(b"&") >= 64, "GET " + path)
        else:
            response = fuzzer.send("POST", path, headers=cookie_headers(data, jar), body=query, jar=jar)
        location = response.header("location") or ""
        if response.status in (301, 302, 303, 307, 308) and not location.startswith("/"):
            target = re.split(r"[?#]", location, maxsplit=1)[0]
            if target not in LOGOUT_URLS:
                raise PropertyFailure("%s %s redirected to %r, which is not a registered logout URL" % (method, path, location[:200]))

    # -- POST /oauth/revoke, /userinfo ------------------------------------------------------------------

    def revoke(data):
        token = data.draw(st.one_of(text_value, st.just("<own access token>"), st.just("<own refresh token>")), label="token")
        if token == "<own access token>":
            token = fuzzer.exchange(fuzzer.fresh_code())["access_token"]
        elif token == "<own refresh token>":
            token = fuzzer.exchange(fuzzer.fresh_code(scope="openid offline_access read:messages", audience=AUDIENCE))["refresh_token"]
        base = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("token", token)]
        if data.draw(st.booleans(), label="hint"):
            hint = data.draw(st.one_of(st.sampled_from(["access_token", "refresh_token"]), payload), label="hint value")
            base.append(("token_type_hint", hint))
        pairs = mutate_form(data, base, form_names) if data.draw(st.integers(0, 2), label="mutate") else [(n, v, "pct") for n, v in base]
        body = encode_pairs(pairs)
        response = fuzzer.send("POST", "/oauth/revoke", body=body)
        expect_oversize(response, len(body) > FORM_LIMIT, "POST /oauth/revoke")
        if response.status != 200:
            expect_json_error(response, "POST /oauth/revoke")

    def userinfo(data):
        token = fuzzer.access_token
        scheme = data.draw(st.sampled_from(["Bearer ", "bearer ", "BEARER  ", "DPoP ", "Basic ", "Bearer", "", "Bearer\t"]), label="scheme")
        variant = data.draw(st.sampled_from(["valid", "flip-last", "spare-bits", "flip-first", "truncate", "append", "none-alg",
                                             "random", "huge", "dot", "spaces"]), label="variant")
        if variant == "flip-last":
            token = token[:-1] + ("A" if token[-1] != "A" else "B")
        elif variant == "spare-bits":  # the last character's low bits are not part of the signature's 256 bytes
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            index = alphabet.index(token[-1])
            token = token[:-1] + alphabet[(index & ~0xF) | ((index + data.draw(st.integers(1, 15), label="bits")) & 0xF)]
        elif variant == "flip-first":
            token = ("f" if token[0] != "f" else "e") + token[1:]
        elif variant == "truncate":
            token = token[:data.draw(st.integers(0, len(token) - 1), label="cut")]
        elif variant == "append":
            token += data.draw(st.sampled_from(["=", "==", ".", "x", " x", "\u00a0"]), label="suffix")
        elif variant == "none-alg":
            parts = token.split(".")
            token = "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + "."
        elif variant == "random":
            token = data.draw(text_value, label="token")
            token = token.decode("latin-1") if isinstance(token, bytes) else token
        elif variant == "huge":
            token = "A" * data.draw(st.sampled_from([5000, 70000]), label="size")
        elif variant == "dot":
            token = ".".join(token.split(".")[:2] + [""])
        elif variant == "spaces":
            token = "  " + token + "  "
        authorization = (scheme + token).encode("utf-8").replace(b"\r", b"").replace(b"\n", b"")
        headers = [("Authorization", authorization)]
        if data.draw(st.booleans(), label="extra headers"):
            headers += data.draw(st.lists(st.sampled_from([("Authorization", "Bearer x"), ("DPoP", "a.b.c"), ("DPoP", "")]),
                                          max_size=2), label="extras")
        method = data.draw(st.sampled_from(["GET", "POST"]), label="method")
        body = None
        if method == "POST" and data.draw(st.booleans(), label="token in the form too"):
            body = encode_pairs([("access_token", fuzzer.access_token, "pct")])
        response = fuzzer.send(method, "/userinfo", headers=headers, body=body)
        if body is not None:
            # The token in the form and in the header: one request, two credentials (RFC 6750 §2), refused
            # (or the header refused first for its size).
            if response.status not in (400, 431):
                raise PropertyFailure("/userinfo answered %d for a token in both the header and the form, expected 400" % response.status)
            return
        presented = authorization.decode("utf-8", "replace")
        bearer = len(headers) == 1 and presented.lower().startswith("bearer ")
        token = presented[7:].strip(SWIFT_WHITESPACE)  # as the server reads it
        if response.status == 200:
            if len(headers) == 1 and not (bearer and token == fuzzer.access_token):
                raise PropertyFailure("/userinfo answered 200 for a token that is not the one issued (%s)\n  issued:    …%s\n  presented: …%s" % (
                    variant, fuzzer.access_token[-40:], token[-40:]))
        elif response.status not in (400, 401, 403, 431):
            raise PropertyFailure("/userinfo answered %d for Authorization %r" % (response.status, authorization[:200]))
        if bearer and token != fuzzer.access_token and same_jws(token, fuzzer.access_token):
            challenge = response.header("www-authenticate") or ""
            if response.status != 401 or 'error="invalid_token"' not in challenge:
                raise PropertyFailure("/userinfo answered %d %r for the issued token in a non-canonical spelling (%s), expected 401 "
                                      "invalid_token\n  issued:    …%s\n  presented: …%s" % (
                                          response.status, challenge, variant, fuzzer.access_token[-40:], token[-40:]))

    # -- other paths, methods, headers, raw bytes -------------------------------------------------------

    def raw(data):
        method = data.draw(st.sampled_from(["GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "G\xc3T", "BREW"]),
                           label="method")
        path = data.draw(st.sampled_from([
            "/authorize", "/authorize/resume", "/login", "/consent", "/organization", "/callback", "/oauth/token", "/oauth/revoke",
            "/userinfo", "/.well-known/openid-configuration", "/.well-known/jwks.json", "/metrics", "/healthz", "/logout",
            "//authorize", "/authorize/", "/AUTHORIZE", "/%61uthorize", "/authorize/../login", "/./authorize", "/authorize;x",
            "*", "http://evil.example/authorize", "/callback/", "/fz<x-fz0>"]), label="path")
        query = data.draw(st.one_of(st.none(), st.binary(max_size=60).map(raw_bytes),
                                    pairs_strategy(known + form_names, 8).map(encode_pairs),
                                    st.sampled_from([b"", b"?", b"&&&", b"%", b"%zz", b"%%%", b"%c3%28", b"%ff%fe%fd", b"a=%E0%80%AF",
                                                     b"a=%ED%A0%80", b"=&=&=", b"state=%0d%0aX-Fz-Injected:%201"])), label="query")
        target = path.encode("latin-1") + (b"?" + query if query is not None else b"")
        if path == "/logout":
            jar = Jar()  # never end the main browser's session
        else:
            jar = fuzzer.main.copy() if data.draw(st.booleans(), label="main cookies") else Jar()
        headers = cookie_headers(data, jar)
        headers += data.draw(st.lists(st.one_of(
            st.sampled_from([("X-Forwarded-For", "1.2.3.4, <x-fz0>"), ("User-Agent", b"\xff\xfe<x-fz0>"), ("User-Agent", "A" * 60000),
                             ("Accept", "*/*" * 2000), ("Content-Type", "application/x-www-form-urlencoded; charset=\xff"),
                             ("Host", "evil.example"), ("X-Forwarded-Host", "evil.example"), ("Forwarded", "host=evil.example"),
                             ("Authorization", "Bearer " + "x" * 9000), ("Expect", "100-continue"), ("Origin", "null")]),
            st.tuples(st.sampled_from(["X-Fz", "Referer", "User-Agent", "Cookie", "Accept-Language"]),
                      st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))),
        ), max_size=3), label="headers")
        body = data.draw(st.one_of(st.none(), st.binary(max_size=200), pairs_strategy(form_names, 8).map(encode_pairs),
                                   st.sampled_from([b"\xff\xfe\x00", b"%" * 1000, b"a=" + b"%ff" * 30000])), label="body")
        if method in ("GET", "HEAD") and body is not None and data.draw(st.booleans(), label="drop GET body"):
            body = None
        fuzzer.send(method, target, headers=headers, body=body)  # the universal properties only

    def expect_oversize(response, oversized, endpoint):
        if oversized and response.status not in OVERSIZE_STATUSES:
            raise PropertyFailure("%s: oversized input answered %d (expected one of %s)" % (
                endpoint, response.status, sorted(OVERSIZE_STATUSES)))

    def expect_repeat_refused(response, body):
        """A /oauth/token form with a repeated parameter: 400 invalid_request naming one as repeated, and no token."""
        try:
            answer = json.loads(response.body)
        except ValueError:
            answer = None
        if not (response.status == 400 and isinstance(answer, dict) and answer.get("error") == "invalid_request"
                and re.fullmatch(r"(The parameter \S+|A parameter) is repeated\.", answer.get("error_description") or "", re.S)
                and set(answer) <= {"error", "error_description"}):
            raise PropertyFailure("POST /oauth/token with repeated %s answered %d %s (expected 400 invalid_request \"The parameter … "
                                  "is repeated.\" and nothing issued)\n  body: %r" % (
                                      sorted(repeated_names(server_parse(body))), response.status, response.text[:300], body[:400]))

    def expect_still_valid(form, what, refused_body):
        """After a request with repeated parameters was refused, `form` (the valid request for the same code or
        refresh token) still gets tokens: the refused one issued nothing and spent nothing."""
        response = fuzzer.send("POST", "/oauth/token", body=encode_fields(form), fuzzed=False)
        if response.status != 200:
            raise PropertyFailure("%s no longer worked after a request with repeated parameters was refused: %d %s\n  refused body: %r" % (
                what, response.status, response.text[:300], refused_body[:400]))

    def expect_json_error(response, endpoint):
        if not 400 <= response.status < 500 and response.status != 503:
            raise PropertyFailure("%s answered %d, expected a 4xx error" % (endpoint, response.status))
        if response.status in (400, 401) and "application/json" in (response.header("content-type") or ""):
            try:
                error = json.loads(response.body).get("error")
            except ValueError:
                error = None
            if not error:
                raise PropertyFailure("%s answered %d without an error code: %r" % (endpoint, response.status, response.body[:200]))

    return [
        ("authorize_random", 14, authorize_random),
        ("authorize_mutated", 26, authorize_mutated),
        ("login", 9, login),
        ("consent", 9, consent),
        ("token_random", 7, token_random),
        ("token_code", 10, token_code),
        ("token_refresh", 5, token_refresh),
        ("revoke", 5, revoke),
        ("userinfo", 7, userinfo),
        ("authorize_post", 6, authorize_post),
        ("par", 5, par),
        ("introspect", 4, introspect),
        ("logout", 5, logout),
        ("raw", 8, raw),
    ]


def fixed_cases(fuzzer):
    """Deterministic oversized and malformed requests, run before the generated ones."""
    reg = fuzzer.registered
    valid = encode_pairs(fuzzer.authorize_query())
    form = "application/x-www-form-urlencoded"
    cases = [
        ("1 MB query string", "GET", b"/authorize?" + valid + b"&state=" + b"A" * ONE_MB, [], None, OVERSIZE_STATUSES),
        ("8 KiB + 1 query string", "GET", b"/authorize?" + valid + b"&x=" + b"A" * (8 * 1024 - len(valid) - 2), [], None, {414}),
        ("65 parameters", "GET", b"/authorize?" + valid + b"&x=1" * 65, [], None, {400}),
        ("1 MB cookie", "GET", b"/authorize?" + valid, [("Cookie", "al_session=" + "C" * ONE_MB)], None, OVERSIZE_STATUSES),
        ("1 MB header", "GET", "/healthz", [("X-Fz", "h" * ONE_MB)], None, OVERSIZE_STATUSES),
        ("1 MB form body to /login", "POST", "/login", [("Content-Type", form)], b"state=" + b"A" * ONE_MB, OVERSIZE_STATUSES),
        ("1 MB form body to /consent", "POST", "/consent", [("Content-Type", form)], b"action=" + b"A" * ONE_MB, OVERSIZE_STATUSES),
        ("1 MB form body to /oauth/token", "POST", "/oauth/token", [("Content-Type", form)],
         b"grant_type=authorization_code&client_id=demo-app&code=" + b"A" * ONE_MB, OVERSIZE_STATUSES),
        ("1 MB form body to /oauth/revoke", "POST", "/oauth/revoke", [("Content-Type", form)], b"token=" + b"A" * ONE_MB,
         OVERSIZE_STATUSES),
        ("1 MB form body to /organization", "POST", "/organization", [("Content-Type", form)], b"x=" + b"A" * ONE_MB, OVERSIZE_STATUSES),
        ("1 MB body to /userinfo", "POST", "/userinfo", [("Content-Type", form)], b"access_token=" + b"A" * ONE_MB, None),
        ("invalid UTF-8 raw in the query", "GET", b"/authorize?" + valid + b"&state=\xff\xfe\xc3\x28", [], None, None),
        ("invalid UTF-8 percent-encoded", "GET", b"/authorize?" + valid + b"&state=%ff%fe%c3%28&nonce=%ED%A0%80", [], None, None),
        ("invalid percent-encoding", "GET", b"/authorize?" + valid + b"&state=%&nonce=%z&login_hint=%%41%", [], None, None),
        ("invalid UTF-8 in a form body", "POST", "/oauth/token", [("Content-Type", form)],
         b"grant_type=\xff&client_id=demo-app\xc3&client_secret=%ff", None),
        ("callback reflection", "GET", b"/callback?" + encode_pairs([("<x-fz0>", "<x-fz0>", "pct"), ("error", "\"qfz0", "pct")]),
         [], None, None),
        ("redirect_uri with userinfo", "GET", b"/authorize?" + encode_pairs(
            [("response_type", "code", "pct"), ("client_id", CLIENT_ID, "pct"), ("redirect_uri", reg + "@evil.example", "pct")]),
         [], None, {400}),
    ]
    chunk = b"grant_type=authorization_code&client_id=demo-app"
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    post = b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    framing = [
        ("chunked form body", post + b"Transfer-Encoding: chunked\r\n\r\n" + chunked, None),
        ("Content-Length and Transfer-Encoding", post + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked, {400}),
        ("two Content-Lengths", post + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", {400}),
        ("negative Content-Length", post + b"Content-Length: -1\r\n\r\nabcde", {400}),
        ("Content-Length beyond 64 bits", post + b"Content-Length: 99999999999999999999999\r\n\r\nabcde", {400}),
        ("malformed chunk size", post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", None),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400}),
        ("TLS client hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", {400}),
        ("HTTP/9.9", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", {400}),
        ("obsolete line folding", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\r\n  b\r\nConnection: close\r\n\r\n", {400}),
        ("pipelined requests", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /callback?a=<x-fz0> HTTP/1.1\r\nHost: x\r\n\r\n"
         b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {200}),
    ]
    def check(name, response, expected):
        if expected is not None and response.status not in expected:
            raise PropertyFailure("fixed case %r answered %d, expected %s" % (name, response.status, sorted(expected)))
        if expected is None and not 400 <= response.status < 500 and response.status not in (200, 302):
            raise PropertyFailure("fixed case %r answered %d" % (name, response.status))
        if 400 <= response.status < 500 and response.elapsed > 5:
            raise PropertyFailure("fixed case %r took %.1f s" % (name, response.elapsed))
        fuzzer.check_alive()

    for name, method, target, headers, body, expected in cases:
        check(name, fuzzer.send(method, target, headers=headers, body=body, label="fixed: " + name), expected)
    for name, message, expected in framing:
        check(name, fuzzer.send(None, None, raw=message, label="fixed: " + name), expected)


# ---------------------------------------------------------------------------------------------------------

def make_example(fuzzer, name, body):
    """The Hypothesis test body of one strategy: the example, then the liveness check."""
    def example(data):
        fuzzer.examples[name] += 1
        try:
            body(data)
            fuzzer.check_alive()
        except Exception as failure:  # noqa: BLE001 - recorded, then raised on for Hypothesis
            fuzzer.first_failures.setdefault(name, "%s: %s" % (type(failure).__name__, failure))
            raise
    return example


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="directory holding authledger and authledger-replay")
    parser.add_argument("--examples", type=int, default=2000, help="generated examples in all (default 2000, about a minute)")
    parser.add_argument("--seed", type=int, help="Hypothesis seed (default: derandomized, the same every run)")
    parser.add_argument("--workdir", help="keep the journal and logs here (default: a temporary directory, removed)")
    args = parser.parse_args()

    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="authledger-fuzz-")
    os.makedirs(workdir, exist_ok=True)
    # Hypothesis keeps caches under its storage directory: never the repository's working directory.
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(workdir, "hypothesis")
    install_missing([("hypothesis", "hypothesis")])
    import hypothesis
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import strategies as st

    binary, replay = binaries(args.bin)
    for path in (binary, replay):
        if not os.access(path, os.X_OK):
            raise SystemExit("fuzz: %s is not an executable" % path)
    journal = os.path.join(workdir, "j")
    if os.path.exists(journal) and os.listdir(journal):
        raise SystemExit("fuzz: %s is not empty (the demo tenant needs an empty journal)" % journal)
    server = Server(binary, journal, log_path=os.path.join(workdir, "serve.log"))
    started = time.monotonic()
    try:
        server.start_healthy(timeout=30, attempts=5)  # a free port may be taken before the server binds it
    except ServerStartError as error:
        server.kill()
        raise SystemExit("fuzz: %s; see %s" % (error, server.log_path))
    fuzzer = Fuzzer(server)
    failures = []
    try:
        fuzzer.setup()  # the demo login and consent: without them nothing below means anything
        try:
            fixed_cases(fuzzer)
        except PropertyFailure as failure:
            failures.append(("fixed cases", str(failure)))
            print("\nFAILED fixed cases:\n%s\n" % failure, flush=True)
        tests = build_tests(fuzzer, st)
        total_weight = sum(weight for _, weight, _ in tests)
        for name, weight, body in tests:
            budget = max(1, args.examples * weight // total_weight)

            configured = settings(
                max_examples=budget, deadline=None, database=None, derandomize=args.seed is None,
                suppress_health_check=list(HealthCheck), verbosity=Verbosity.normal, report_multiple_bugs=False,
                phases=[Phase.explicit, Phase.generate, Phase.shrink], print_blob=False,
            )(given(st.data())(make_example(fuzzer, name, body)))
            if args.seed is not None:
                configured = hypothesis.seed(args.seed)(configured)
            try:
                configured()
            except (PropertyFailure, hypothesis.errors.HypothesisException) as failure:
                # Hypothesis attaches the (shrunk) falsifying example's draws as notes.
                text = "\n".join([str(failure)] + list(getattr(failure, "__notes__", [])))
                if isinstance(failure, hypothesis.errors.HypothesisException) and name in fuzzer.first_failures:
                    text += "\n\nthe first failure of this strategy, before Hypothesis replayed it:\n" + fuzzer.first_failures[name]
                failures.append((name, text))
                print("\nFAILED %s:\n%s\n" % (name, text), flush=True)
                if not server.alive:
                    break
            except Exception as failure:  # noqa: BLE001 - any other error is a failure of this test, reported
                failures.append((name, "%s: %s" % (type(failure).__name__, failure)))
                print("\nFAILED %s: %s: %s\n" % (name, type(failure).__name__, failure), flush=True)
                if not server.alive:
                    break
    finally:
        alive_at_end = server.alive
        server.stop(timeout=20)
    if not alive_at_end:
        failures.append(("server", "the server was not running at the end (exit %s); see %s" % (server.returncode, server.log_path)))
    replay_results = check_journal(replay, journal, timeout=300)
    for label, result in replay_results:
        if result.returncode != 0:
            failures.append(("replay", "authledger-replay %s exited %d: %s" % (label, result.returncode, result.output[-800:])))
    elapsed = time.monotonic() - started

    print("\nexamples per strategy:")
    for name, count in sorted(fuzzer.examples.items()):
        print("  %-18s %5d" % (name, count))
    print("requests per endpoint (status: count):")
    for endpoint in sorted(fuzzer.inputs):
        statuses = ", ".join("%d:%d" % item for item in sorted(fuzzer.statuses[endpoint].items()))
        print("  %-42s %5d   %s" % (endpoint, fuzzer.inputs[endpoint], statuses))
    all_statuses = collections.Counter()
    for counter in fuzzer.statuses.values():
        all_statuses.update(counter)
    print("HTML responses: %d, %d of them reflecting an injected marker (escaped)" % (
        fuzzer.html_responses, fuzzer.escaped_reflections))
    print("statuses seen: %s" % ", ".join("%d:%d" % item for item in sorted(all_statuses.items())))
    for label, result in replay_results:
        print("authledger-replay %s: exit %d: %s" % (label, result.returncode, result.output.splitlines()[0] if result.output else ""))
    if failures:
        print("\nfailures:")
        for name, text in failures:
            print("  [%s] %s" % (name, text.splitlines()[0][:300]))
    total_inputs = sum(fuzzer.inputs.values())
    verified = all(result.returncode == 0 for _, result in replay_results)
    print("runtime: %.0f s" % elapsed)
    print("fuzz: %d inputs, %d failures, journal %s" % (total_inputs, len(failures), "verified" if verified else "NOT verified"))
    if not args.workdir:
        if failures:
            print("fuzz: journal and server log kept in %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
