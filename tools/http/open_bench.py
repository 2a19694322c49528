#!/usr/bin/env python3
"""Open benchmark: the time from launching `authledger serve` on a large journal until it answers, beside the
same time on a journal holding only the demo tenant, measured in the same run.

    tools/http/open_bench.py --bin .build/release [--events 10000000] [--samples 3] [--dir DIR] [--keep]
    tools/http/open_bench.py --bin .build/release --journal DIR/journal      # reuse a journal kept with --keep

1. `authledger serve` on an empty journal applies the demo tenant; the demo user logs in and consents (the
   session cookie is kept), then the server stops.
2. Baseline: the server is started on that small journal `--samples` times; each time, the time until
   GET /healthz answers 200 and until the first GET /authorize (demo client, logged in, consented: the full
   decision, durable events, a 302 with a code) returns.
3. `authledger-bench fill` appends `--events` events (login failures) through the server's own recording
   path, many per commit. Disk: about 650 bytes per event (10,000,000 events: about 6.3 GB); the script wants
   1.2 KB per event free before it starts.
4. The same timings on the large journal: with the page cache as the fill left it (warm), and with the
   journal's data.mdb evicted from the page cache first (cold, posix_fadvise DONTNEED).

5. The investigator's questions about one decision, user or moment on the same journals (issue #19): `explain`
   of the demo login's decision (an early one: its configuration, and what followed, come from the indexes),
   `consent --user auth0|demo --at #HEAD`, `timeline --user auth0|demo`; each run warm and cold, with its
   wall time and its peak resident memory, beside the same on the small journal.

Goals: below 1 s to the first /authorize on a 10,000,000-event journal — the server must not replay the
journal at start; below 1 s for every forensics question, with memory that does not grow with the journal.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import requests

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from bench import BASE, PORT, REDIRECT, login  # noqa: E402  (the demo login and the port of tools/http/bench.py)

GOAL_SECONDS = 1.0
SESSION_FILE = "open-bench-session.json"


def wait_for_health(server, deadline):
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server exited with status %d" % server.returncode)
        try:
            if requests.get(BASE + "healthz", timeout=1).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            time.sleep(0.002)
    raise SystemExit("the server did not answer GET /healthz in time")


def start(bin_dir, journal, log):
    return subprocess.Popen([os.path.join(bin_dir, "authledger"), "serve", "--journal", journal, "--port", str(PORT)],
                            stdout=log, stderr=subprocess.STDOUT)


def stop(server):
    server.terminate()
    server.wait()


def timed_start(bin_dir, journal, query, cookie):
    """Launches the server; returns (seconds to /healthz, seconds to the first /authorize's response, head sequence)."""
    log_path = journal.rstrip("/") + ".serve.log"
    with open(log_path, "w") as log:
        launched = time.monotonic()
        server = start(bin_dir, journal, log)
        try:
            healthy = wait_for_health(server, launched + 120)
            response = requests.get(BASE + "authorize?" + query, headers={"Cookie": cookie}, allow_redirects=False, timeout=60)
            answered = time.monotonic()
        finally:
            stop(server)
    location = response.headers.get("Location", "")
    if response.status_code != 302 or not location.startswith(REDIRECT) or "code=" not in location:
        raise SystemExit("GET /authorize did not redirect to the callback with a code: %d %s" % (response.status_code, location))
    with open(log_path) as log:
        head = re.search(r"journal .* at #(\d+)", log.read())
    return healthy - launched, answered - launched, int(head.group(1)) if head else -1


def evict(path):
    """Drops the file's pages from the page cache (they are clean: the journal was closed and fsynced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_mb(path):
    """Megabytes of the file in the page cache (fincore from util-linux), or None."""
    try:
        output = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path], capture_output=True, text=True).stdout
        return int(output.split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def timed_command(argv):
    """Runs a command to completion; returns (wall seconds, peak resident MB, exit status, standard output)."""
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - started, usage.ru_maxrss / 1024, process.returncode, output


def forensic_questions(bin_dir, journal):
    """The forensics commands to time on `journal`: (name, argv). The decision explained is the demo login's
    last authorization decision (early in the journal); the consent moment is the journal's head."""
    replay = os.path.join(bin_dir, "authledger-replay")
    lines = subprocess.run([replay, "timeline", "--journal", journal, "--user", "auth0|demo", "--format", "jsonl"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    decision = [e["sequence"] for e in events if e["type"] == "auth.authorize.decided"][-1]
    return decision, [
        ("explain %d (a decision, its configuration, what followed)" % decision, [replay, "explain", str(decision), "--journal", journal]),
        # A moment past the head is the head: the consents as they stand after the last event.
        ("consent --user (the demo user) --at #HEAD", [replay, "consent", "--user", "auth0|demo", "--at", "#%d" % (2**63), "--journal", journal]),
        ("timeline --user (the demo user)", [replay, "timeline", "--user", "auth0|demo", "--journal", journal]),
    ]


def forensics(bin_dir, journal, cold):
    """Times every forensics question on `journal` (data.mdb evicted from the page cache first when `cold`);
    returns [(name, seconds, peak MB)]."""
    _, questions = forensic_questions(bin_dir, journal)
    results = []
    for name, argv in questions:
        if cold:
            evict(os.path.join(journal, "data.mdb"))
        seconds, peak, status, output = timed_command(argv)
        if status != 0:
            raise SystemExit("%s exited with %d:\n%s" % (" ".join(argv), status, output[-2000:]))
        results.append((name, seconds, peak))
    return results


def samples(bin_dir, journal, query, cookie, count, cold=False):
    results = []
    for _ in range(count):
        if cold:
            evict(os.path.join(journal, "data.mdb"))
        results.append(timed_start(bin_dir, journal, query, cookie))
    return results


def prepare(bin_dir, journal):
    """Starts the server on an empty journal (it applies the demo tenant), logs the demo user in and consents,
    stops it; returns the /authorize query and the session cookie."""
    with open(journal + ".serve.log", "w") as log:
        server = start(bin_dir, journal, log)
        try:
            wait_for_health(server, time.monotonic() + 120)
            session = requests.Session()
            query, _ = login(session)
            return query, "; ".join("%s=%s" % (c.name, c.value) for c in session.cookies)
        finally:
            stop(server)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--events", type=int, default=10_000_000, help="events to generate (about 650 bytes of disk each)")
    parser.add_argument("--samples", type=int, default=3, help="server starts per measurement (the median is shown)")
    parser.add_argument("--dir", help="where to make the journal (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the large journal (reuse it with --journal)")
    parser.add_argument("--journal", help="a large journal kept by an earlier run (--keep): skip generating one")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="authledger-open-bench-", dir=args.dir)
    if not args.journal:
        free = shutil.disk_usage(work).free
        if free < args.events * 1200 + (2 << 30):
            shutil.rmtree(work, ignore_errors=True)
            raise SystemExit("not enough disk in %s: %.1f GB free, about %.1f GB needed for %d events" % (
                work, free / 1e9, (args.events * 1200 + (2 << 30)) / 1e9, args.events))
    try:
        if args.journal:
            # Baseline on a fresh small journal; the large one and its session come from the earlier run.
            small = os.path.join(work, "small")
            small_query, small_cookie = prepare(args.bin, small)
            baseline = samples(args.bin, small, small_query, small_cookie, args.samples)
            small_forensics = forensics(args.bin, small, cold=False)
            journal = args.journal.rstrip("/")
            with open(os.path.join(os.path.dirname(journal), SESSION_FILE)) as handle:
                saved = json.load(handle)
            query, cookie, fill = saved["query"], saved["cookie"], saved["fill"]
        else:
            # The baseline is the large journal itself before it is filled: the demo tenant and one login.
            journal = os.path.join(work, "journal")
            query, cookie = prepare(args.bin, journal)
            baseline = samples(args.bin, journal, query, cookie, args.samples)
            small_forensics = forensics(args.bin, journal, cold=False)
            output = subprocess.run([os.path.join(args.bin, "authledger-bench"), "fill", "--journal", journal,
                                     "--events", str(args.events), "--format", "jsonl"],
                                    stdout=subprocess.PIPE, text=True, check=True).stdout
            fill = json.loads(output.strip().splitlines()[-1])
            with open(os.path.join(work, SESSION_FILE), "w") as handle:
                json.dump({"query": query, "cookie": cookie, "fill": fill}, handle)
        # Warm (the page cache as the fill or the last run left it), then cold.
        warm = samples(args.bin, journal, query, cookie, args.samples)
        data = os.path.join(journal, "data.mdb")
        data_bytes = os.path.getsize(data)
        cached_before = resident_mb(data)
        evict(data)
        cached_after = resident_mb(data)
        cold = samples(args.bin, journal, query, cookie, args.samples, cold=True)
        warm_forensics = forensics(args.bin, journal, cold=False)
        cold_forensics = forensics(args.bin, journal, cold=True)
    finally:
        if args.keep and not args.journal:
            shutil.rmtree(os.path.join(work, "small"), ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)

    def median(rows, index):
        return statistics.median(row[index] for row in rows)

    head = max(row[2] for row in warm + cold)
    print("Open benchmark: time from launching `authledger serve` until it answers; median of %d starts each" % args.samples)
    print("")
    print("| measurement | events in the journal | to GET /healthz 200 | to the first GET /authorize (302 with a code) | vs the small journal |")
    print("|---|---:|---:|---:|---:|")
    base_authorize = median(baseline, 1)

    def row(name, rows):
        print("| %s | %d | %.3f s | %.3f s | %.2f |" % (
            name, max(r[2] for r in rows), median(rows, 0), median(rows, 1), median(rows, 1) / base_authorize))

    row("baseline: serve on a journal holding the demo tenant and one login", baseline)
    row("serve on the large journal, page cache warm", warm)
    row("serve on the large journal, data.mdb evicted from the page cache (cold)", cold)
    print("")
    print("Goal: below %.1f s from launch to the first /authorize on a 10,000,000-event journal (no replay at start), "
          "judged on the cold start: %.3f s (median; slowest of all starts on the large journal: %.3f s)." % (
              GOAL_SECONDS, median(cold, 1), max(r[1] for r in cold + warm)))
    if fill:
        print("The large journal: %d events appended by `authledger-bench fill` in %.0f s (%.0f events/s, %.1f record calls per commit); "
              "data.mdb %.2f GB, about %.0f bytes per event." % (
                  fill["appended"], fill["seconds"], fill["events_per_second"], fill["record_calls_per_commit"], data_bytes / 1e9,
                  data_bytes / max(1, head)))
    if cached_before is not None and cached_after is not None:
        print("data.mdb in the page cache: %.0f MB before eviction, %.0f MB after." % (cached_before, cached_after))
    print("")
    print("Forensics: one question about one decision, user or moment, answered from the indexes (wall time and peak resident memory of the command)")
    print("")
    print("| question | small journal | large journal, warm | large journal, data.mdb evicted (cold) | peak memory small / large |")
    print("|---|---:|---:|---:|---:|")
    for (name, small_s, small_mb), (_, warm_s, warm_mb), (_, cold_s, cold_mb) in zip(small_forensics, warm_forensics, cold_forensics):
        print("| forensics: %s | %.3f s | %.3f s | %.3f s | %.0f MB / %.0f MB |" % (name, small_s, warm_s, cold_s, small_mb, max(warm_mb, cold_mb)))
    print("")
    print("Goal: every question below %.1f s on a 10,000,000-event journal, cold: slowest %.3f s; memory not growing with the journal "
          "(peak %.0f MB on the small journal, %.0f MB on the large)." % (
              GOAL_SECONDS, max(r[1] for r in cold_forensics + warm_forensics), max(r[2] for r in small_forensics),
              max(r[2] for r in cold_forensics + warm_forensics)))
    if head < 10_000_000:
        print("NOTE: the journal holds %d events, fewer than the 10,000,000 of the goal." % head)
    if args.keep and not args.journal:
        print("kept: %s (reuse: tools/bench open --journal %s)" % (work, journal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
