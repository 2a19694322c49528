#!/usr/bin/env python3
"""The investigation console in headless Chromium, as an investigator uses it (issue #18).

    python3 tools/console_test.py --bin DIR --artifacts OUTDIR

On a copy of the fixture journal (journals/fixture-incident: a password-guessing burst on bob, a stolen code
replayed, alice's consent revoked), `authledger-replay console --public-key journals/fixture-incident.pub
--port 0` is started and Chromium, JavaScript disabled, clicks through it:

1. home: lang, title, headings, every form control labelled, no asset from elsewhere; the banner says the
   journal verified against the pinned key (79 events); the latest events are listed;
2. report: the report form gives the incident report with its charts and anomalies, each anomaly linking
   to explain and timeline;
3. explain: the replayed code's anomaly leads to the decision that issued it (#74), and its text links the
   events that followed;
4. timelines: the burst's link lists bob's failed logins; an address on a row leads to that address's
   timeline; the stolen code (typed into the form) gives #75-#78, and an event's code-hash link the same;
5. one event: #77's payload, with links back and forth;
6. consent: alice's consent at #74 (web-app, openid profile) and now (none: revoked);
7. without --public-key the banner says the journal is not pinned; on a journal with one altered byte it
   says NOT VERIFIED and names the event;
8. read-only and loopback: POST is refused (405), a request for another Host is refused (421, DNS
   rebinding), one another site's page makes is refused (403, Sec-Fetch-Site or Origin), every page
   carries a CSP without script; the journal's data file is byte for byte what it
   was, and verifies.
A screenshot of each page goes to OUTDIR (console-*.png). Prints one line per check; exits 1 on failure.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from authledger_e2e import binaries, install_missing  # noqa: E402
from browser_test import Browser, CheckFailed, check_javascript_disabled, check_page_basics, ensure_packages, say  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "journals" / "fixture-incident"
PINNED = REPO / "journals" / "fixture-incident.pub"
FACTS = json.loads((REPO / "journals" / "fixture-incident.facts.json").read_text())


class Console:
    """`authledger-replay console … --port 0` as a child process; its URL from the line it prints."""

    def __init__(self, replay: Path, journal: Path, pinned: bool = True):
        arguments = [str(replay), "console", "--journal", str(journal), "--data-key", str(journal) + ".datakey", "--port", "0"]
        if pinned:
            arguments += ["--public-key", str(PINNED)]
        self.process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        self.output = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise CheckFailed("console", "it exited before listening (%s): %s" % (self.process.wait(), "".join(self.output)))
            self.output.append(line)
            match = re.search(r"console on (http://127\.0\.0\.1:\d+/)", line)
            if match:
                self.base = match.group(1)
                return
            if time.monotonic() > deadline:
                raise CheckFailed("console", "no 'console on' line within 60 s: %s" % "".join(self.output))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def copy_fixture(workdir: Path, name: str) -> Path:
    journal = workdir / name
    shutil.copytree(FIXTURE, journal)
    shutil.copy(str(FIXTURE) + ".datakey", str(journal) + ".datakey")
    (Path(str(journal) + ".datakey")).chmod(0o600)
    return journal


def text_of(browser: Browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.driver.find_element(By.TAG_NAME, "body").text


def banner(browser: Browser) -> str:
    from selenium.webdriver.common.by import By

    found = browser.driver.find_elements(By.ID, "verification")
    return found[0].text if found else ""


def rows(browser: Browser) -> list[int]:
    """The sequence numbers of the events table's rows, in order."""
    from selenium.webdriver.common.by import By

    return [int(row.get_dom_attribute("id")[1:]) for row in browser.driver.find_elements(By.CSS_SELECTOR, "tr[id^=e]")]


def follow(browser: Browser, element) -> None:
    """Clicks a link or a form's button and waits until the browser has left the page it was on.

    A click returns before a form submission's page has replaced the old one, so elements found right after it
    may belong to the old page and go stale under the caller (a CI run failed that way): wait for the old
    document's root to go stale first.

    Chromium reports the old root gone in one of two ways, depending on how far the replacement has got:
    stale, or (while the old document is being torn down) "Node with given id does not belong to the
    document" as an unknown error, which Selenium's `staleness_of` does not catch (a fresh-clone CI run of
    2026-12-06 failed on it). Both mean the page was left."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root = browser.driver.find_element(By.TAG_NAME, "html")
    element.click()

    def left(_driver) -> bool:
        try:
            root.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise

    WebDriverWait(browser.driver, 30).until(left)


def click(browser: Browser, page: str, text: str, within: str = "body"):
    """Follows the first link whose text starts with `text` inside the CSS selector `within`."""
    from selenium.webdriver.common.by import By

    for link in browser.driver.find_elements(By.CSS_SELECTOR, within + " a"):
        if link.text.strip().startswith(text):
            href = link.get_dom_attribute("href")
            follow(browser, link)
            return href
    raise CheckFailed(page, "no link starting with %r in %s" % (text, within))


def expect(condition, page: str, message: str):
    if not condition:
        raise CheckFailed(page, message)


def walk(browser: Browser, console: Console, artifacts: Path) -> int:
    from selenium.webdriver.common.by import By

    driver = browser.driver
    origin = console.base.rstrip("/")
    shots = 0

    # 1. Home.
    browser.forget_requests()
    driver.get(console.base)
    check_page_basics(browser, "home", origin)
    expect("Verified against the pinned key: 79 events" in banner(browser), "home", "banner: %r" % banner(browser))
    latest = rows(browser)
    expect(latest[:1] == [79] and len(latest) == 25, "home", "latest events listed: %s" % latest)
    browser.screenshot(artifacts / "console-home.png", full_page=True)
    shots += 1
    say("console home: pinned banner, %d latest events, labelled forms, no foreign asset" % len(latest))

    # 2. Report, from the form.
    follow(browser, driver.find_element(By.CSS_SELECTOR, "form[action='/report'] button"))
    expect(urlsplit(driver.current_url).path == "/report", "report", "the form led to %s" % driver.current_url)
    check_page_basics(browser, "report", origin)
    expect(driver.find_elements(By.CSS_SELECTOR, "svg"), "report", "no chart")
    expect("Verified against the pinned key" in text_of(browser), "report", "the report's own verification line is missing")
    anomalies = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "tr[id^=anomaly]")]
    expect(any("code replay" in row for row in anomalies) and any("failed-login burst" in row for row in anomalies), "report",
           "anomalies: %s" % anomalies)
    browser.screenshot(artifacts / "console-report.png", full_page=True)
    shots += 1
    report_url = driver.current_url

    # 3. Explain, from the code replay's anomaly.
    replay_row = next(row for row in driver.find_elements(By.CSS_SELECTOR, "tr[id^=anomaly]") if "code replay" in row.text)
    explain = next(link for link in replay_row.find_elements(By.TAG_NAME, "a") if link.text.startswith("explain #"))
    decision = int(explain.text.split("#")[1])
    follow(browser, explain)
    expect(urlsplit(driver.current_url).path == "/explain/%d" % decision, "explain", "at %s" % driver.current_url)
    check_page_basics(browser, "explain", origin)
    answer = driver.find_element(By.TAG_NAME, "pre").text
    expect("Rule that decided" in answer and "#75" in answer, "explain", "explain #%d says: %s" % (decision, answer[:400]))
    expect(driver.find_elements(By.CSS_SELECTOR, "pre a[href='/event/75']"), "explain", "#75 is not a link")
    browser.screenshot(artifacts / "console-explain.png", full_page=True)
    shots += 1
    say("console report: charts, %d anomalies; explain #%d links what followed" % (len(anomalies), decision))

    # 4. Timelines: the burst's link, then an address, then the stolen code.
    driver.get(report_url)
    burst_row = next(row for row in driver.find_elements(By.CSS_SELECTOR, "tr[id^=anomaly]") if "failed-login burst" in row.text)
    follow(browser, next(link for link in burst_row.find_elements(By.TAG_NAME, "a") if link.text == "timeline"))
    query = parse_qs(urlsplit(driver.current_url).query)
    expect(urlsplit(driver.current_url).path == "/timeline" and ("user" in query or "ip" in query), "timeline", "at %s" % driver.current_url)
    check_page_basics(browser, "timeline", origin)
    burst = rows(browser)
    expect(len(burst) >= 10 and "login failed" in text_of(browser), "timeline", "the burst's timeline: %s" % burst)
    browser.screenshot(artifacts / "console-timeline.png", full_page=True)
    shots += 1
    address_link = next((link for link in driver.find_elements(By.CSS_SELECTOR, "td.refs a") if link.text.startswith("ip ")), None)
    expect(address_link is not None, "timeline", "no address to follow on the burst's rows")
    address = address_link.text[3:]
    follow(browser, address_link)
    expect(parse_qs(urlsplit(driver.current_url).query).get("ip") == [address], "timeline by address", "at %s" % driver.current_url)
    expect(rows(browser), "timeline by address", "no event from %s" % address)
    say("console timelines: %d events in the burst; address %s: %d events" % (len(burst), address, len(rows(browser))))

    driver.get(console.base)
    driver.find_element(By.ID, "timeline-code").send_keys(FACTS["stolen_code"])
    follow(browser, driver.find_element(By.CSS_SELECTOR, "form[action='/timeline'] button"))
    code_rows = rows(browser)
    expect(code_rows == [75, 76, 77, 78], "timeline by code", "the stolen code's events: %s" % code_rows)
    click(browser, "timeline by code", "#77", "tr[id=e77]")
    expect(urlsplit(driver.current_url).path == "/event/77", "event", "at %s" % driver.current_url)
    check_page_basics(browser, "event", origin)
    payload = driver.find_element(By.TAG_NAME, "pre").text
    expect("auth.code.replayed" in text_of(browser) and "code_hash" in payload, "event", "#77: %s" % payload[:300])
    expect(driver.find_elements(By.CSS_SELECTOR, "a[href='/event/76']") and driver.find_elements(By.CSS_SELECTOR, "a[href='/event/78']"),
           "event", "no links to #76 and #78")
    browser.screenshot(artifacts / "console-event.png", full_page=True)
    shots += 1
    click(browser, "event", "code-hash ", ".refs")
    expect(rows(browser) == [75, 76, 77, 78], "timeline by code hash", "from #77's code hash: %s" % rows(browser))
    say("console code: #75-#78 by the code and by its hash; event #77's payload")

    # 6. Consent at #74 and now.
    driver.get(console.base)
    driver.find_element(By.ID, "consent-user").send_keys("auth0|alice")
    driver.find_element(By.ID, "consent-at").send_keys("#74")
    follow(browser, driver.find_element(By.CSS_SELECTOR, "form[action='/consent'] button"))
    check_page_basics(browser, "consent", origin)
    then = driver.find_element(By.TAG_NAME, "pre").text
    expect("web-app" in then and "openid" in then, "consent", "alice's consent at #74: %r" % then)
    browser.screenshot(artifacts / "console-consent.png", full_page=True)
    shots += 1
    click(browser, "consent", "consent now", ".refs")
    expect("no consents" in text_of(browser), "consent now", "alice's consent now: %r" % text_of(browser)[:300])
    say("console consent: alice at #74: %s; now: none" % then.strip().splitlines()[0])
    return shots


def check_guards(console: Console) -> str:
    import requests

    session = requests.Session()
    session.trust_env = False
    page = session.get(console.base, timeout=30)
    policy = page.headers.get("Content-Security-Policy", "")
    expect(page.status_code == 200 and "default-src 'none'" in policy and "script-src" not in policy, "guards", "CSP: %r" % policy)
    expect(page.headers.get("Cache-Control") == "no-store" and page.headers.get("Referrer-Policy") == "no-referrer", "guards", "headers: %s" % page.headers)
    posted = session.post(console.base + "timeline", data={"user": "x"}, timeout=30)
    expect(posted.status_code == 405, "guards", "POST answered %d" % posted.status_code)
    rebound = session.get(console.base, headers={"Host": "attacker.example:%s" % urlsplit(console.base).port}, timeout=30)
    expect(rebound.status_code == 421, "guards", "a request for another Host answered %d" % rebound.status_code)
    cross = session.get(console.base + "timeline?from=%231", headers={"Sec-Fetch-Site": "cross-site"}, timeout=30)
    expect(cross.status_code == 403, "guards", "a request another site's page made answered %d" % cross.status_code)
    foreign = session.get(console.base, headers={"Origin": "https://attacker.example"}, timeout=30)
    expect(foreign.status_code == 403, "guards", "a request from another origin answered %d" % foreign.status_code)
    typed = session.get(console.base, headers={"Sec-Fetch-Site": "none"}, timeout=30)
    expect(typed.status_code == 200, "guards", "an address typed into the browser answered %d" % typed.status_code)
    bad = session.get(console.base + "event/abc", timeout=30)
    expect(bad.status_code == 400, "guards", "/event/abc answered %d" % bad.status_code)
    missing = session.get(console.base + "event/100000", timeout=30)
    expect(missing.status_code == 404, "guards", "/event/100000 answered %d" % missing.status_code)
    return "POST 405, foreign Host 421, another site's page or origin 403, bad and missing events 400/404, CSP without script"


def tamper(journal: Path, replay: str) -> None:
    """Changes the type of the last auth.consent.revoked event as stored in data.mdb: its record is stored
    shortened (docs/journal-format.md §6), the tag 0x01 and its time first, its type by position (15,
    auth.consent.revoked) 41 bytes on; 14 is auth.consent.denied."""
    events = subprocess.run([replay, "tail", "--journal", str(journal), "--from", "1"], capture_output=True, text=True, check=True)
    revoked = [json.loads(line) for line in events.stdout.splitlines() if '"auth.consent.revoked"' in line]
    if not revoked:
        raise CheckFailed("tamper", "no auth.consent.revoked in %s" % journal)
    when = datetime.datetime.strptime(revoked[-1]["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    micros = (when - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(microseconds=1)
    data = journal / "data.mdb"
    content = bytearray(data.read_bytes())
    marker = b"\x01" + micros.to_bytes(8, "big", signed=True)
    at = content.find(marker)
    while at >= 0 and (at + 41 >= len(content) or content[at + 41] != 15):
        at = content.find(marker, at + 1)
    if at < 0:
        raise CheckFailed("tamper", "the record of auth.consent.revoked is not in %s" % data)
    content[at + 41] = 14
    data.write_bytes(bytes(content))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--artifacts", required=True)
    args = parser.parse_args()
    _, replay = binaries(args.bin)
    artifacts = Path(args.artifacts).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    ensure_packages()
    install_missing([("selenium", "selenium"), ("requests", "requests")])
    consoles = []
    browser = None
    with tempfile.TemporaryDirectory(prefix="authledger-console-") as temporary:
        workdir = Path(temporary)
        try:
            journal = copy_fixture(workdir, "incident")
            before = hashlib.sha256((journal / "data.mdb").read_bytes()).hexdigest()
            console = Console(Path(replay), journal)
            consoles.append(console)
            browser = Browser(workdir / "profile")
            check_javascript_disabled(browser)
            shots = walk(browser, console, artifacts)
            say("console guards: %s" % check_guards(console))

            def banner_of(journal_dir: Path, pinned: bool, name: str, wanted: str) -> str:
                """The home page's banner of a console on `journal_dir`, which must say `wanted` (screenshot kept)."""
                running = Console(Path(replay), journal_dir, pinned=pinned)
                consoles.append(running)
                browser.driver.get(running.base)
                text = banner(browser)
                expect(wanted in text, name, "banner: %r" % text)
                browser.screenshot(artifacts / ("console-%s.png" % name))
                return text

            unpinned_banner = banner_of(journal, False, "unpinned", "NOT pinned")
            altered = copy_fixture(workdir, "altered")
            tamper(altered, replay)
            altered_banner = banner_of(altered, True, "altered", "NOT VERIFIED")
            shots += 2
            say("console banners: without --public-key %r; one byte altered %r" % (unpinned_banner[:80], altered_banner[:120]))

            for running in consoles:
                running.stop()
            after = hashlib.sha256((journal / "data.mdb").read_bytes()).hexdigest()
            expect(before == after, "read-only", "data.mdb changed while the console served it")
            verified = subprocess.run([replay, "verify", "--journal", str(journal), "--public-key", str(PINNED)], capture_output=True, text=True)
            expect(verified.returncode == 0, "read-only", "verify after the console: %s" % verified.stdout + verified.stderr)
        except Exception as error:  # noqa: BLE001 - every failure ends in one clear message and exit 1
            failure = error if isinstance(error, CheckFailed) else CheckFailed("console", "%s: %s" % (type(error).__name__, error))
            print("console: FAILED — %s" % failure, file=sys.stderr)
            if browser is not None:
                try:
                    browser.driver.save_screenshot(str(artifacts / "console-failure.png"))
                    print("console: the page at %s is in %s" % (browser.driver.current_url, artifacts / "console-failure.png"), file=sys.stderr)
                except Exception:  # noqa: BLE001
                    pass
            for running in consoles:
                print("console printed:\n%s" % "".join(running.output), file=sys.stderr)
            return 1
        finally:
            for running in consoles:
                running.stop()
            if browser is not None:
                browser.quit()
    say("console: passed (%d screenshots in %s)" % (shots, artifacts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
