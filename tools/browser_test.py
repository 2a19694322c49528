#!/usr/bin/env python3
"""The README walk-through, driven in a real headless browser, as a newcomer would.

    python3 tools/browser_test.py --bin DIR --artifacts OUTDIR [--report HTMLFILE]

DIR holds the built `authledger` and `authledger-replay` executables (e.g. .build/debug). The test:

1. installs what it needs when missing: the Debian packages `chromium` and `chromium-driver`
   (apt-get, with sudo unless root) and `selenium` from PyPI; the system chromedriver is used, so
   selenium-manager never downloads anything;
2. starts `authledger serve` on an empty journal in a temporary directory and a free port, and takes
   the `demo: open URL` line it prints, as the README shows it;
3. in headless Chromium with JavaScript disabled (the pages must work without it): the login page
   (lang, title, heading, labelled inputs, Tab order email -> password -> submit, no third-party
   assets), the consent page (scopes openid and profile, Accept and Deny), the callback page (code,
   state=xyz, iss), each with a screenshot; then the README's own `curl` line exchanges the code;
4. README step 5: the same URL again goes straight to the callback (SSO session and recorded
   consent); `prompt=login` asks for a login; a wider scope asks for consent again;
5. stops the server with SIGINT (Ctrl-C), checks `authledger-replay timeline --user auth0|demo`
   for the login, consent, code and token events, restarts the server on the same journal and port
   and checks that the SSO session and the consent survived the restart;
6. with --report, opens that HTML file (file://) and checks it has an inline <svg> and makes no
   network request.

Prints one line per checked page and `browser: walk-through passed (N screenshots in OUTDIR)`;
exits 1 with the failed check (page, element, what was expected) on stderr. The server is always
stopped and the browser always closed.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

from authledger_e2e import DEMO_USER_ID, PASSWORD, USERNAME, Server, binaries, free_port, install_missing, run_replay

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The port the README's examples use; the test runs on a free port and substitutes it.
README_PORT = "8080"
# Events the walk-through must leave in the journal for the demo user.
EXPECTED_EVENTS = ("auth.login.succeeded", "auth.consent.granted", "auth.code.issued", "auth.token.issued")


class CheckFailed(Exception):
    """A failed assertion: `page` is where, the message says what was expected and what was found."""

    def __init__(self, page: str, message: str):
        super().__init__(f"{page}: {message}")
        self.page = page


def say(line: str) -> None:
    print(line, flush=True)


# MARK: - Dependencies


def ensure_packages() -> None:
    """Installs chromium, chromium-driver (and curl) with apt-get when they are missing."""
    missing = [
        package
        for package, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER), ("curl", "/usr/bin/curl"))
        if not os.path.exists(path)
    ]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    say(f"setup: apt-get install {' '.join(missing)}")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


# MARK: - The server


class CapturedServer(Server):
    """`authledger serve` as a child process, started at once; its output is collected line by line from
    both streams."""

    def __init__(self, binary: Path, journal: Path, port: int, workdir: Path):
        super().__init__(binary, journal, port, cwd=workdir)
        self.lines: list[tuple[str, str]] = []  # (stream, line)
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.start()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", self.process.stdout), ("stderr", self.process.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream) -> None:
        for line in stream:
            self._queue.put((name, line.rstrip("\n")))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 90) -> tuple[str, re.Match]:
        """The first line (of either stream, old or new) that matches `pattern`: (stream, match)."""
        regex = re.compile(pattern)
        for stream, line in self.lines:
            if match := regex.search(line):
                return stream, match
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                finished = not any(reader.is_alive() for reader in self._readers)
                if self.process.poll() is not None and finished and self._queue.empty():
                    break
                continue
            if item is None:
                continue
            self.lines.append(item)
            if match := regex.search(item[1]):
                return item[0], match
        raise CheckFailed("server", f"expected a line matching {pattern!r}; the server printed:\n{self.output()}")

    def output(self) -> str:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.lines.append(item)
        return "\n".join(f"  [{stream}] {line}" for stream, line in self.lines[-40:]) or "  (nothing)"

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl-C: SIGINT, then waits; SIGKILL (and a failure) if it does not stop in time."""
        if not self.stop(signal.SIGINT, timeout):
            raise CheckFailed("server", f"did not stop within {timeout:.0f} s of SIGINT (killed)")
        for reader in self._readers:
            reader.join(timeout=5)
        return self.process.returncode


# MARK: - The README


def readme_walkthrough() -> dict:
    """What the README's walk-through promises: the demo URL line, the curl line and its output."""
    text = README.read_text()
    start = text.find("## Walk-through: the demo in a browser")
    if start < 0:
        raise CheckFailed("README", "no section '## Walk-through: the demo in a browser'")
    section = text[start:text.find("\n## ", start + 1)]
    demo = re.search(r"# authledger: demo: open (\S+)", section)
    if not demo:
        raise CheckFailed("README", "the walk-through shows no '# authledger: demo: open URL' line")
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    curl_block = next((block for block in blocks if "oauth/token" in block), None)
    if curl_block is None:
        raise CheckFailed("README", "the walk-through has no sh block with the curl call to /oauth/token")
    lines = [line.strip() for line in curl_block.splitlines()]
    command = " ".join(line.rstrip("\\").strip() for line in lines if line and not line.startswith("#"))
    expected = next((line[1:].strip() for line in lines if line.startswith("# {")), None)
    if not command.startswith("curl ") or "PASTE_THE_CODE" not in command:
        raise CheckFailed("README", f"expected a 'curl … code=PASTE_THE_CODE' command, found {command!r}")
    return {
        "demo_url": demo.group(1),
        "curl": command,
        "token_response": json.loads(expected) if expected else None,
    }


def with_port(text: str, port: int) -> str:
    """The README's text for a server on `port` instead of 8080 (plain and percent-encoded)."""
    for separator in (":", "%3A"):
        text = text.replace(f"127.0.0.1{separator}{README_PORT}", f"127.0.0.1{separator}{port}")
    return text


# MARK: - Page checks


class Browser:
    """Headless Chromium through the system chromedriver, JavaScript disabled, network requests logged."""

    def __init__(self, profile: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=900,900", "--no-first-run", "--disable-extensions",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-features=Translate,MediaRouter,OptimizationHints",
                         f"--user-data-dir={profile}"):
            options.add_argument(argument)
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        self.driver.set_page_load_timeout(30)
        self._requests: list[str] = []

    def quit(self) -> None:
        try:
            self.driver.quit()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass

    def requests(self) -> list[str]:
        """The URLs the browser requested (documents, redirects, subresources) since ``forget_requests``."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self._requests.append(message["params"]["request"]["url"])
        return list(self._requests)

    def forget_requests(self) -> None:
        self.requests()
        self._requests.clear()

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        if full_page:
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(1100, min(max(int(height) + 120, 900), 6000))
        self.driver.save_screenshot(str(path))
        if full_page:
            self.driver.set_window_size(900, 900)


def element_label(driver, element) -> str:
    """The accessible name source of a form control: label[for], aria-label, aria-labelledby or a wrapping label."""
    from selenium.webdriver.common.by import By

    if (aria := (element.get_dom_attribute("aria-label") or "").strip()):
        return aria
    if (ids := (element.get_dom_attribute("aria-labelledby") or "").split()):
        text = " ".join(e.text for i in ids for e in driver.find_elements(By.ID, i)).strip()
        if text:
            return text
    if (id_ := element.get_dom_attribute("id")):
        labels = [e for e in driver.find_elements(By.TAG_NAME, "label") if e.get_dom_attribute("for") == id_]
        if labels and labels[0].text.strip():
            return labels[0].text.strip()
    wrapping = element.find_elements(By.XPATH, "ancestor::label")
    if wrapping and wrapping[0].text.strip():
        return wrapping[0].text.strip()
    return ""


def describe(element) -> str:
    parts = [element.tag_name]
    for attribute in ("id", "name", "type"):
        if (value := element.get_dom_attribute(attribute)):
            parts.append(f'{attribute}="{value}"')
    return "<" + " ".join(parts) + ">"


def check_page_basics(browser: Browser, page: str, origin: str | None) -> dict:
    """lang, title, a heading, labelled controls, named buttons, img alt, and no asset from another origin.

    `origin` is the page's own origin (scheme://host:port); None for a local file, which may load nothing
    over the network at all.
    """
    from selenium.webdriver.common.by import By

    driver = browser.driver
    html = driver.find_element(By.TAG_NAME, "html")
    lang = (html.get_dom_attribute("lang") or "").strip()
    if not lang:
        raise CheckFailed(page, "<html> has no lang attribute (expected e.g. lang=\"en\")")
    title = driver.title.strip()
    if not title:
        raise CheckFailed(page, "the page has no <title> (or an empty one)")
    headings = [h.text.strip() for h in driver.find_elements(By.CSS_SELECTOR, "h1, h2, h3, h4, h5, h6")]
    headings = [text for text in headings if text]
    if not headings:
        raise CheckFailed(page, "the page has no heading (<h1>…<h6>)")
    controls = [
        element for element in driver.find_elements(By.CSS_SELECTOR, "input, select, textarea")
        if (element.get_dom_attribute("type") or "").lower() not in ("hidden", "submit", "button", "reset", "image")
    ]
    for control in controls:
        if not element_label(driver, control):
            raise CheckFailed(page, f"{describe(control)} has no label "
                                    "(expected <label for=…>, aria-label or aria-labelledby)")
    for button in driver.find_elements(By.CSS_SELECTOR, "button, input[type=submit], input[type=button]"):
        name = button.text.strip() or " ".join(
            (button.get_dom_attribute(attribute) or "").strip() for attribute in ("value", "aria-label")).strip()
        if not name:
            raise CheckFailed(page, f"{describe(button)} has no accessible name (text, value or aria-label)")
    for image in driver.find_elements(By.TAG_NAME, "img"):
        if image.get_dom_attribute("alt") is None:
            raise CheckFailed(page, f"{describe(image)} has no alt attribute")
    check_no_external_assets(browser, page, origin)
    return {"lang": lang, "title": title, "heading": headings[0], "controls": len(controls)}


NETWORK_SCHEMES = ("http", "https", "ws", "wss", "ftp")
URL_ATTRIBUTES = ("src", "href", "srcset", "action", "formaction", "data", "poster", "xlink:href")


def check_no_external_assets(browser: Browser, page: str, origin: str | None) -> None:
    """No src/href (or similar) and no CSS url() pointing to another origin, and no request made to one."""
    from selenium.webdriver.common.by import By

    driver = browser.driver
    base = driver.current_url

    def foreign(url: str) -> bool:
        parts = urlsplit(urljoin(base, url.strip()))
        if parts.scheme not in NETWORK_SCHEMES:  # data:, blob:, file:, the browser's own chrome:// pages
            return False
        # A local file may reach nothing over the network; a served page only its own origin.
        return origin is None or f"{parts.scheme}://{parts.netloc}" != origin

    selector = ", ".join("[" + attribute.replace(":", "\\:") + "]" for attribute in URL_ATTRIBUTES)
    for element in driver.find_elements(By.CSS_SELECTOR, selector):
        for attribute in URL_ATTRIBUTES:
            value = element.get_dom_attribute(attribute)
            if not value:
                continue
            urls = [value]
            if attribute == "srcset":
                urls = [candidate.split()[0] for candidate in value.split(",") if candidate.strip()]
            for url in urls:
                if foreign(url):
                    raise CheckFailed(page, f"{describe(element)} {attribute}=\"{value}\" points to another origin "
                                            "(expected no third-party assets)")
    source = driver.page_source
    for match in re.finditer(r"(?:url\(\s*['\"]?|@import\s+['\"])([^'\")\s]+)", source):
        if foreign(match.group(1)):
            raise CheckFailed(page, f"CSS refers to {match.group(1)} (expected no third-party assets)")
    for url in browser.requests():
        if foreign(url):
            raise CheckFailed(page, f"the browser requested {url} (expected no request to another origin)")


def wait_for_path(browser: Browser, page: str, path: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if urlsplit(browser.driver.current_url).path == path:
            return
        time.sleep(0.1)
    raise CheckFailed(page, f"expected the browser at {path}, it is at {browser.driver.current_url} "
                            f"(title {browser.driver.title!r}, heading {heading(browser)!r})")


def heading(browser: Browser) -> str:
    from selenium.webdriver.common.by import By

    found = browser.driver.find_elements(By.TAG_NAME, "h1")
    return found[0].text.strip() if found else ""


def check_javascript_disabled(browser: Browser) -> None:
    """The profile really runs no page script (so the flow below is proven to work without JavaScript)."""
    browser.driver.get("data:text/html,<title>off</title><script>document.title='on'</script>")
    if browser.driver.title != "off":
        raise CheckFailed("browser", "JavaScript is not disabled in the browser profile (a page script ran)")
    browser.forget_requests()


def check_login_page(browser: Browser, origin: str, artifacts: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page = "login page"
    driver = browser.driver
    wait_for_path(browser, page, "/login")
    basics = check_page_basics(browser, page, origin)
    forms = driver.find_elements(By.TAG_NAME, "form")
    if not forms:
        raise CheckFailed(page, "no <form> (expected a login form that works without JavaScript)")
    form = forms[0]
    if (form.get_dom_attribute("method") or "get").lower() != "post":
        raise CheckFailed(page, f"the form's method is {form.get_dom_attribute('method')!r} (expected post)")
    emails = form.find_elements(By.CSS_SELECTOR, "input[type=email], input[autocomplete=username]")
    passwords = form.find_elements(By.CSS_SELECTOR, "input[type=password]")
    submits = form.find_elements(By.CSS_SELECTOR, "button[type=submit], button:not([type]), input[type=submit]")
    if not emails:
        raise CheckFailed(page, "no email input (expected <input type=email>)")
    if not passwords:
        raise CheckFailed(page, "no password input (expected <input type=password>)")
    if not submits:
        raise CheckFailed(page, "no submit button in the form")
    email, password, submit = emails[0], passwords[0], submits[0]
    email_label, password_label = element_label(driver, email), element_label(driver, password)

    # Keyboard: from the page's initial focus, Tab must reach email, then password, then the submit button.
    autofocused = driver.switch_to.active_element == email
    wanted = [("email", email), ("password", password), ("submit", submit)]
    reached: list[str] = []
    focused = driver.switch_to.active_element
    for _ in range(8):
        for name, element in wanted:
            if focused == element and name not in reached:
                reached.append(name)
        if len(reached) == len(wanted):
            break
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
    if reached != [name for name, _ in wanted]:
        order = " → ".join(reached) or "nothing"
        raise CheckFailed(page, f"Tab order reached {order} (expected email → password → submit)")
    browser.screenshot(artifacts / "login.png")
    say(f"login page: ok — lang={basics['lang']}, title {basics['title']!r}, heading {basics['heading']!r}, "
        f"inputs labelled {email_label!r} and {password_label!r}, Tab: email → password → submit"
        f"{' (email autofocused)' if autofocused else ''}, no third-party assets (login.png)")

    email.clear()
    email.send_keys(USERNAME)
    password.send_keys(PASSWORD)
    submit.click()


def check_consent_page(browser: Browser, origin: str, artifacts: Path, scopes: list[str], answer: str | None) -> None:
    from selenium.webdriver.common.by import By

    page = "consent page"
    driver = browser.driver
    wait_for_path(browser, page, "/consent")
    basics = check_page_basics(browser, page, origin)
    listed = [item.text.strip() for item in driver.find_elements(By.TAG_NAME, "li")]
    # Each scope is listed by its description with its name beside it in parentheses, or by its name alone.
    names = [item.rsplit("(", 1)[-1].rstrip(")") if item.endswith(")") else item for item in listed]
    for scope in scopes:
        if scope not in names:
            raise CheckFailed(page, f"the scope {scope!r} is not listed "
                                    f"(expected a list item per scope; found {listed})")
    buttons = {b.text.strip(): b for b in driver.find_elements(By.CSS_SELECTOR, "form button, form input[type=submit]")}
    for name in ("Accept", "Deny"):
        if name not in buttons:
            raise CheckFailed(page, f"no {name!r} button (found {sorted(buttons)})")
    if answer is None:
        say(f"consent page (wider scope): ok — asks again, lists {', '.join(listed)}")
        return
    browser.screenshot(artifacts / "consent.png")
    say(f"consent page: ok — title {basics['title']!r}, scopes {', '.join(listed)}, "
        "Accept and Deny buttons (consent.png)")
    buttons[answer].click()


def check_callback_page(browser: Browser, origin: str, issuer: str, screenshot: Path | None,
                        page: str = "callback page") -> str:
    from selenium.webdriver.common.by import By

    driver = browser.driver
    wait_for_path(browser, page, "/callback")
    check_page_basics(browser, page, origin)
    codes = driver.find_elements(By.ID, "code")
    code = codes[0].text.strip() if codes else ""
    if not code:
        raise CheckFailed(page, f"no code shown (expected <code id=\"code\">; heading {heading(browser)!r})")
    terms = [dt.text.strip() for dt in driver.find_elements(By.TAG_NAME, "dt")]
    values = [dd.text.strip() for dd in driver.find_elements(By.TAG_NAME, "dd")]
    shown = dict(zip(terms, values))
    query = {name: value[0] for name, value in parse_qs(urlsplit(driver.current_url).query).items()}
    for name, expected in (("code", code), ("state", "xyz"), ("iss", issuer)):
        if shown.get(name) != expected:
            raise CheckFailed(page, f"the page shows {name}={shown.get(name)!r} (expected {expected!r})")
        if query.get(name) != expected:
            raise CheckFailed(page, f"the redirect carried {name}={query.get(name)!r} (expected {expected!r})")
    if screenshot is not None:
        browser.screenshot(screenshot)
    return code


# MARK: - The walk-through


def exchange_code(readme: dict, port: int, code: str) -> dict:
    """Runs the README's curl line, with the port and the code substituted."""
    command = with_port(readme["curl"], port).replace("PASTE_THE_CODE", code)
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise CheckFailed("token exchange", f"curl exited {result.returncode}: {result.stderr.strip()}")
    try:
        body = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise CheckFailed("token exchange", f"expected JSON from /oauth/token, got {result.stdout[:300]!r}") from None
    if not body.get("access_token"):
        raise CheckFailed("token exchange", f"no access_token in the response: {body}")
    expected = readme["token_response"] or {}
    if set(body) != set(expected):
        raise CheckFailed("token exchange",
                          f"the response has fields {sorted(body)}; the README shows {sorted(expected)}")
    for name, value in expected.items():
        if not (isinstance(value, str) and "…" in value) and body[name] != value:
            raise CheckFailed("token exchange", f"{name} is {body[name]!r}; the README shows {value!r}")
    return body


def check_timeline(replay: Path, journal: Path) -> list[str]:
    result = run_replay(replay, ["timeline", "--journal", journal, "--user", DEMO_USER_ID], timeout=60)
    if result.returncode != 0:
        raise CheckFailed("timeline", f"{shlex.join(result.command)} exited {result.returncode}: {result.stderr.strip()}")
    missing = [event for event in EXPECTED_EVENTS if event not in result.stdout]
    if missing:
        raise CheckFailed("timeline", f"missing {', '.join(missing)} for {DEMO_USER_ID}; it printed:\n{result.stdout}")
    return [line for line in result.stdout.splitlines() if any(event in line for event in EXPECTED_EVENTS)]


def start_server(authledger: Path, journal: Path, port: int, workdir: Path, readme: dict, first: bool,
                 servers: list[CapturedServer]) -> tuple[CapturedServer, str]:
    """Starts the server and checks its demo URL against the README's; `servers` gets it at once (for clean-up)."""
    server = CapturedServer(authledger, journal, port, workdir)
    servers.append(server)
    stream, match = server.wait_for(r"authledger: demo: open (\S+)")
    server.wait_for(r"authledger: listening on ")
    demo_url = match.group(1)
    promised = with_port(readme["demo_url"], port)
    if demo_url != promised:
        raise CheckFailed("server", f"printed demo URL {demo_url}; the README shows (port substituted) {promised}")
    if first:
        server.wait_for(r"authledger: empty journal, applied the demo tenant", timeout=1)
    say(f"server: {'started' if first else 'restarted'} on port {port}; "
        f"demo URL as in the README (printed on {stream})")
    return server, demo_url


def check_sso(browser: Browser, origin: str, issuer: str, demo_url: str, page: str, screenshot: Path | None) -> str:
    """Opens the demo URL again: it must go straight to the callback, through no login and no consent page."""
    browser.forget_requests()
    browser.driver.get(demo_url)
    code = check_callback_page(browser, origin, issuer, screenshot, page=page)
    visited = [urlsplit(url).path for url in browser.requests() if url.startswith(origin + "/")]
    if "/authorize" not in visited:
        raise CheckFailed(page, f"the browser's network log shows no request to /authorize (found {visited}): "
                                "cannot tell which pages were visited")
    if "/login" in visited or "/consent" in visited:
        raise CheckFailed(page, f"the browser went through {' → '.join(visited)} (expected no login and no consent)")
    return code


def walk_through(args: argparse.Namespace, workdir: Path, artifacts: Path, browser: Browser,
                 servers: list[CapturedServer]) -> int:
    """The README walk-through, steps 1–5, the timeline and a restart; returns the number of screenshots."""
    authledger, replay = (Path(path) for path in binaries(args.bin))
    for binary in (authledger, replay):
        if not os.access(binary, os.X_OK):
            raise CheckFailed("setup", f"{binary} is not an executable "
                                       "(--bin must hold authledger and authledger-replay)")
    readme = readme_walkthrough()
    journal = workdir / "journals" / "dev"
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    issuer = origin + "/"
    screenshots = 0

    check_javascript_disabled(browser)
    server, demo_url = start_server(authledger, journal, port, workdir, readme, first=True, servers=servers)

    # Steps 1–3: login, consent, callback.
    browser.driver.get(demo_url)
    check_login_page(browser, origin, artifacts)
    check_consent_page(browser, origin, artifacts, ["openid", "profile"], answer="Accept")
    code = check_callback_page(browser, origin, issuer, artifacts / "callback.png")
    screenshots += 3
    issued = time.monotonic()
    say(f"callback page: ok — code {code[:8]}…, state=xyz, iss={issuer} (callback.png)")

    # Step 4: the README's curl line, within the code's 60 seconds.
    body = exchange_code(readme, port, code)
    say(f"token exchange: ok — the README's curl returned {', '.join(sorted(body))} "
        f"({time.monotonic() - issued:.1f} s after the code)")

    # Step 5: SSO and recorded consent; prompt=login; a wider scope.
    again = check_sso(browser, origin, issuer, demo_url, "callback page (SSO)", artifacts / "sso.png")
    screenshots += 1
    if again == code:
        raise CheckFailed("callback page (SSO)", "the same code came back (expected a new one)")
    say("callback page (SSO): ok — /authorize went straight to the callback with a new code (sso.png)")
    browser.driver.get(demo_url + "&prompt=login")
    wait_for_path(browser, "login page (prompt=login)", "/login")
    check_page_basics(browser, "login page (prompt=login)", origin)
    say("login page (prompt=login): ok — asked to log in again")
    browser.driver.get(demo_url.replace("scope=openid%20profile", "scope=openid%20profile%20email"))
    check_consent_page(browser, origin, artifacts, ["openid", "profile", "email"], answer=None)

    # Ctrl-C, then the journal, as an investigator would read it.
    status = server.interrupt()
    if status != 0:
        raise CheckFailed("server", f"exited {status} after SIGINT (expected 0); it printed:\n{server.output()}")
    server.wait_for(r"authledger: journal closed at #", timeout=1)
    events = check_timeline(replay, journal)
    say(f"timeline: ok — {len(events)} events for {DEMO_USER_ID} include {', '.join(EXPECTED_EVENTS)}")

    # The SSO session and the consent survive a restart on the same journal (and port: the demo
    # tenant's issuer and redirect URI were fixed when it was applied).
    server, demo_url = start_server(authledger, journal, port, workdir, readme, first=False, servers=servers)
    check_sso(browser, origin, issuer, demo_url, "callback page (SSO after restart)", None)
    say("callback page (SSO after restart): ok — straight to the callback")
    status = server.interrupt()
    if status != 0:
        raise CheckFailed("server", f"exited {status} after SIGINT (expected 0)")

    if args.report:
        check_report(browser, Path(args.report), artifacts)
        screenshots += 1
    return screenshots


def check_report(browser: Browser, report: Path, artifacts: Path) -> None:
    from selenium.webdriver.common.by import By

    page = f"report {report.name}"
    if not report.is_file():
        raise CheckFailed(page, f"{report} does not exist")
    browser.forget_requests()
    browser.driver.get(report.resolve().as_uri())
    basics = check_page_basics(browser, page, origin=None)
    svgs = browser.driver.find_elements(By.CSS_SELECTOR, "svg")
    if not svgs:
        raise CheckFailed(page, "no inline <svg> (expected at least one chart drawn inline)")
    for element in browser.driver.find_elements(By.CSS_SELECTOR, "[src], [href]"):
        for attribute in ("src", "href"):
            value = (element.get_dom_attribute(attribute) or "").strip().lower()
            if value.startswith(("http:", "https:", "//")):
                raise CheckFailed(page, f"{describe(element)} {attribute}=\"{value}\" (expected no network reference)")
    browser.screenshot(artifacts / "report.png", full_page=True)
    say(f"report: ok — title {basics['title']!r}, {len(svgs)} inline <svg>, no network request (report.png)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="directory with authledger and authledger-replay")
    parser.add_argument("--artifacts", required=True, help="directory for the screenshots")
    parser.add_argument("--report", help="an HTML report (authledger-replay report --html) to check too")
    args = parser.parse_args()
    artifacts = Path(args.artifacts).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)

    try:
        ensure_packages()
        install_missing([("selenium", "selenium")], announce=True)
    except (subprocess.CalledProcessError, ImportError) as error:
        print(f"browser: FAILED — setup: {error}", file=sys.stderr)
        return 1
    servers: list[CapturedServer] = []
    browser = None
    with tempfile.TemporaryDirectory(prefix="authledger-browser-") as temporary:
        workdir = Path(temporary)
        try:
            browser = Browser(workdir / "profile")
            screenshots = walk_through(args, workdir, artifacts, browser, servers)
        except Exception as error:  # noqa: BLE001 - every failure ends in one clear message and exit 1
            failure = error
            if not isinstance(error, CheckFailed):
                failure = CheckFailed("browser", f"{type(error).__name__}: {error}")
            print(f"browser: FAILED — {failure}", file=sys.stderr)
            if browser is not None:
                try:
                    browser.driver.save_screenshot(str(artifacts / "failure.png"))
                    print(f"browser: the page at {browser.driver.current_url} is in {artifacts / 'failure.png'}",
                          file=sys.stderr)
                except Exception:  # noqa: BLE001 - the failure itself matters more
                    pass
            if servers and failure.page != "server" and not failure.page.startswith("report"):
                print(f"browser: the server printed:\n{servers[-1].output()}", file=sys.stderr)
            return 1
        finally:
            for server in servers:
                server.kill()
            if browser is not None:
                browser.quit()
    say(f"browser: walk-through passed ({screenshots} screenshots in {artifacts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
