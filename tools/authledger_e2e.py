"""Shared plumbing of the end-to-end scripts in tools/ that start the real server and drive it:
crash_loop.py, load_test.py, fuzz_http.py, openapi_check.py, browser_test.py and io_fault_test.py.

    from authledger_e2e import Server, check_journal, ...

A script run as `python3 tools/NAME.py` finds this module because Python puts the script's own
directory first on sys.path. Only the standard library is imported here, so a script can import this
module before it installs what it needs (`install_missing`); the one function that drives a
`requests` session is given the caller's session.

What is here:
  * the demo tenant (Sources/AuthCore/Tenant/DemoTenant.swift), which `authledger serve` applies to an
    empty journal: `CLIENT_ID`, `CLIENT_SECRET`, `USERNAME`, `PASSWORD`, `DEMO_USER_ID`, `AUDIENCE`,
    `demo_redirect_uri(base)`;
  * the executables: `binaries(--bin directory)`, `install_missing(Python packages)`;
  * the server: `free_port()`, and `Server`, `authledger serve --journal DIR --port P` as a child
    process: started on a free or a given port, waited for until /healthz answers, stopped with a
    signal (and killed when it does not stop in time);
  * the login and consent pages: `hidden_field`, `login_fields`, `consent_fields`, and
    `log_in_and_consent`, which plays a browser through them with a `requests` session;
  * PKCE: `b64url`, `pkce_pair`; DPoP: `DPoPKey` (needs the `cryptography` package: install it first);
  * `authledger-replay`: `run_replay`, and `check_journal` (`verify` and `rebuild --check`).
"""
import base64
import hashlib
import html
import http.client
import importlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urljoin

# ---------------------------------------------------------------------------------------------------------
# The demo tenant

CLIENT_ID = "demo-app"
CLIENT_SECRET = "demo-secret"
USERNAME = "demo@example.com"
PASSWORD = "correct horse battery staple"
DEMO_USER_ID = "auth0|demo"
AUDIENCE = "https://api.example.com"


def demo_redirect_uri(base):
    """The redirect URI the demo tenant registers for demo-app: the issuer (`base`) + "callback"."""
    return base + "callback"


# ---------------------------------------------------------------------------------------------------------
# Executables and packages

def binaries(bin_dir):
    """The absolute paths of `authledger` and `authledger-replay` in `bin_dir` (a script's --bin)."""
    return (os.path.abspath(os.path.join(bin_dir, "authledger")),
            os.path.abspath(os.path.join(bin_dir, "authledger-replay")))


def install_missing(requirements, announce=False):
    """Installs with pip each package whose module cannot be found; `requirements` is a list of
    (module name, pip package name). Retries with --break-system-packages when pip refuses (PEP 668).
    With `announce`, prints `setup: pip install …` first. Raises CalledProcessError when pip fails."""
    def absent(module):
        # find_spec imports a dotted name's parents first, and raises when one of them is missing
        # ("opentelemetry.proto" on a machine without the opentelemetry namespace).
        try:
            return importlib.util.find_spec(module) is None
        except ModuleNotFoundError:
            return True

    missing = [package for module, package in requirements if absent(module)]
    if not missing:
        return
    if announce:
        print("setup: pip install %s" % " ".join(missing), flush=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", *missing]
    if subprocess.run(command).returncode != 0:
        subprocess.run(command + ["--break-system-packages"], check=True)
    importlib.invalidate_caches()


# ---------------------------------------------------------------------------------------------------------
# The server

_ports_given = set()


def free_port(avoid=()):
    """A TCP port on 127.0.0.1 that is free now (another process may still take it before the server),
    and not one of `avoid`.

    Never the same port twice in one test process: the kernel may hand a just-closed probe's port out again,
    and two nodes told the same port would answer each other's /healthz (cluster_test saw node B "healthy"
    on node A's port while B had exited on EADDRINUSE)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _ports_given and port not in avoid:
            _ports_given.add(port)
            return port


def listening_inodes(port):
    """The socket inodes listening on TCP `port` (any address), from /proc/net/tcp{,6}; None without /proc."""
    inodes, found_table = set(), False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                found_table = True
                next(rows, None)
                for row in rows:
                    fields = row.split()
                    if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    return inodes if found_table else None


def process_listens_on(pid, port):
    """Whether process `pid` holds a socket listening on `port`. True when /proc cannot tell (not Linux)."""
    inodes = listening_inodes(port)
    if inodes is None:
        return True
    try:
        descriptors = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return True
    for descriptor in descriptors:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, descriptor))
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def healthz_ok(base, timeout=1.0):
    """Whether GET <base>healthz answers 200 within `timeout` seconds (never through a proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(base + "healthz", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return False


class ServerStartError(Exception):
    """The server exited before it answered /healthz (`returncode` is its exit status), or it did not
    answer in time (`returncode` is None)."""

    def __init__(self, message, returncode=None):
        super().__init__(message)
        self.returncode = returncode


class Server:
    """`authledger serve --journal JOURNAL --port PORT [extra_args]` as a child process.

    `port` None picks a free port at each start. The output goes to files when `log_path` is given:
    both streams to it, or stderr to `err_path` when that is given too; the first start of this object
    truncates them, later starts append. Without `log_path` both streams are text pipes, for the
    caller to read from `process.stdout` and `process.stderr`. stdin is /dev/null.
    """

    def __init__(self, binary, journal, port=None, log_path=None, err_path=None, extra_args=(), env=None, cwd=None):
        self.binary, self.journal = str(binary), str(journal)
        self.fixed_port = port
        self.port = port
        self.log_path, self.err_path = log_path, err_path
        self.extra_args, self.env, self.cwd = [str(argument) for argument in extra_args], env, cwd
        self.process = None
        self.starts = 0

    @property
    def base(self):
        """The server's URL, `http://127.0.0.1:PORT/`: its issuer for the demo tenant."""
        return "http://127.0.0.1:%d/" % self.port

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self):
        """The exit status once the process has ended (negative: the signal that ended it), else None."""
        return None if self.process is None else self.process.poll()

    def command(self):
        return [self.binary, "serve", "--journal", self.journal, "--port", str(self.port)] + self.extra_args

    def start(self):
        """Starts the process (on a new free port when no port was given); does not wait for it."""
        if self.fixed_port is None:
            self.port = free_port()
        options = dict(cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL)
        if self.log_path is None:
            self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)
        else:
            mode = "w" if self.starts == 0 else "a"
            out = open(self.log_path, mode)
            err = open(self.err_path, mode) if self.err_path else out
            try:
                self.process = subprocess.Popen(self.command(), stdout=out, stderr=err, **options)
            finally:
                out.close()
                err.close()
        self.starts += 1

    def wait_healthy(self, timeout=60.0, interval=0.05):
        """Polls GET /healthz until it answers 200 while the process runs. Raises ServerStartError when the
        process exits first, or when `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError("the server exited with status %s before answering /healthz" % self.process.returncode,
                                       self.process.returncode)
            # The answer must come from this process: another one on the port would answer for it.
            if healthz_ok(self.base) and self.process.poll() is None and process_listens_on(self.process.pid, self.port):
                return
            time.sleep(interval)
        raise ServerStartError("the server did not answer /healthz within %.0f s" % timeout)

    def start_healthy(self, timeout=60.0, interval=0.05, attempts=1):
        """start() and wait_healthy(). On a free port, a server that exits before answering (another
        process took the port meanwhile, say) is started again on another one, `attempts` times in all."""
        for attempt in range(1, attempts + 1):
            self.start()
            try:
                self.wait_healthy(timeout, interval)
                return
            except ServerStartError as error:
                if error.returncode is None or self.fixed_port is not None or attempt == attempts:
                    raise

    def stop(self, signal_number=signal.SIGTERM, timeout=20.0):
        """Sends `signal_number` and waits up to `timeout` seconds for the process to exit; kills it when it
        takes longer. Returns False when it had to be killed, True otherwise (also when it had already exited)."""
        if self.process is None or self.process.poll() is not None:
            return True
        self.process.send_signal(signal_number)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return False
        return True

    def kill(self):
        """SIGKILL, and waits for the exit."""
        if self.alive:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------------------------------------------------
# The login and consent pages

def hidden_field(page, name):
    """The value of the field `name` (`name="…" value="…"`) in the HTML `page`, unescaped; None when absent."""
    match = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    return html.unescape(match.group(1)) if match else None


def login_fields(page, username=USERNAME, password=PASSWORD):
    """The login form as a browser posts it to /login: the page's state and csrf, and the credentials."""
    return {"state": hidden_field(page, "state"), "csrf": hidden_field(page, "csrf"), "username": username, "password": password}


def consent_fields(page, action="accept"):
    """The consent form as a browser posts it to /consent: the page's state and csrf, and the answer."""
    return {"state": hidden_field(page, "state"), "csrf": hidden_field(page, "csrf"), "action": action}


def log_in_and_consent(session, base, response, redirect_uri, username=USERNAME, password=PASSWORD, timeout=30, limit=8,
                       on_page=None):
    """Plays a browser with the `requests` session from `response` (an answer of /authorize, redirects not
    followed) until the server sends it to the client: follows the server's redirects, fills in the login
    page with `username` and `password`, accepts the consent page. Returns the first response that is
    not a 302, or is a 302 to `redirect_uri`, or the last one after `limit` steps. `on_page(text)` is
    called with each login and consent page."""
    for _ in range(limit):
        location = response.headers.get("Location", "")
        if response.status_code != 302 or location.startswith(redirect_uri):
            break
        if location.startswith(("/login", "/consent")):
            page = session.get(urljoin(base, location), timeout=timeout).text
            if on_page is not None:
                on_page(page)
            if location.startswith("/login"):
                path, fields = "login", login_fields(page, username, password)
            else:
                path, fields = "consent", consent_fields(page)
            response = session.post(urljoin(base, path), data=fields, allow_redirects=False, timeout=timeout)
        else:
            response = session.get(urljoin(base, location), allow_redirects=False, timeout=timeout)
    return response


# ---------------------------------------------------------------------------------------------------------
# PKCE

def b64url(data):
    """base64url without padding (RFC 7515), as str."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair(size=32):
    """A PKCE code_verifier (`size` random bytes, base64url) and its S256 code_challenge (RFC 7636)."""
    verifier = b64url(os.urandom(size))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


class DPoPKey:
    """An Ed25519 key that signs RFC 9449 proofs (`cryptography` must be installed: `install_missing`)."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        self.key = Ed25519PrivateKey.generate()
        public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(public)}

    def proof(self, method, url, access_token=None):
        """A proof for `method` on `url` (with `ath` for `access_token`), with a fresh `jti`."""
        header = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": self.jwk}
        claims = {"jti": b64url(os.urandom(16)), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        return signing_input + "." + b64url(self.key.sign(signing_input.encode()))


# ---------------------------------------------------------------------------------------------------------
# authledger-replay

@dataclass
class ReplayResult:
    """What one `authledger-replay` run printed and returned."""

    replay: str
    arguments: list
    returncode: int
    stdout: str
    stderr: str

    @property
    def command(self):
        return [self.replay] + self.arguments

    @property
    def output(self):
        """stdout then stderr, stripped."""
        return (self.stdout + self.stderr).strip()


def run_replay(replay, arguments, timeout=None):
    """Runs `authledger-replay ARGUMENTS` (raises TimeoutExpired after `timeout` seconds, when given)."""
    arguments = [str(argument) for argument in arguments]
    result = subprocess.run([str(replay)] + arguments, capture_output=True, text=True, timeout=timeout)
    return ReplayResult(str(replay), arguments, result.returncode, result.stdout, result.stderr)


JOURNAL_CHECKS = (("verify", ["verify"]), ("rebuild --check", ["rebuild", "--check"]))


def check_journal(replay, journal, timeout=None):
    """`authledger-replay verify` and `rebuild --check` on `journal`: [(label, ReplayResult)], in that order."""
    return [(label, run_replay(replay, command + ["--journal", journal], timeout)) for label, command in JOURNAL_CHECKS]
