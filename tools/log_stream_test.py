#!/usr/bin/env python3
"""A log stream against a real HTTP receiver that fails, stalls and restarts (issue #18): `authledger serve
--log-stream URL` on an LMDB journal, client flows running throughout, the receiver (a local HTTP server)
misbehaving in turn.

    python3 tools/log_stream_test.py --bin .build/debug [--keep]

1. delivery: the receiver answers 200; every event reaches it, in order; /metrics shows the lag at 0;
2. refusals: it answers 500 for 3 s, then 200 again: the stream catches up, the refusals are counted;
3. stall: it takes every request without answering for 15 s (past the 10 s request timeout): flows go on
   at their usual pace meanwhile (the authorization path never waits for the stream), and the stream
   catches up once it answers again;
4. receiver restarted: it is closed (connections refused) for 3 s, then listens again on its port;
5. server killed: the server is SIGKILLed under traffic and restarted: the stream carries on from the
   position stored in the journal;
then: every event from #1 to the journal's head reached the receiver (some twice, at least once), new
events always arrived in order, no body held the client's address in clear (pseudonyms by default), and
/metrics reports the stream's lag, deliveries and failed requests.
Prints a line per check; exits 1 on any failure.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from authledger_e2e import Server, binaries, demo_redirect_uri, free_port  # noqa: E402
from cluster_test import CheckFailed, Cluster, expect, new_session, run_checks  # noqa: E402
import requests  # noqa: E402

CATCH_UP_SECONDS = 30


class Receiver:
    """An HTTP receiver on a fixed port: `mode` is ok (200), fail (500) or stall (no answer until the mode
    changes); `stop()` closes the port, `start()` listens again."""

    def __init__(self, port):
        self.port = port
        self.mode = "ok"
        self.lock = threading.Lock()
        self.batches = []  # (first, last, [sequence...]) of every batch answered 200
        self.bodies = []
        self.requests = 0
        self.httpd = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/ingest" % self.port

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *arguments):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests += 1
                while receiver.mode == "stall":
                    time.sleep(0.05)
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                sequences = [json.loads(line)["sequence"] for line in body.decode().splitlines() if line.strip()]
                with receiver.lock:
                    receiver.batches.append((self.headers.get("X-AuthLedger-Events"), sequences))
                    receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def received(self):
        with self.lock:
            return [sequence for _, sequences in self.batches for sequence in sequences]


class StreamTest:
    def __init__(self, authledger, replay, work):
        self.work = work
        self.receiver = Receiver(free_port())
        self.receiver.start()
        self.cluster = Cluster(authledger, replay, work)  # for its client (flow, redeem)
        self.server = Server(authledger, work / "journal", free_port(), log_path=work / "server.log",
                             extra_args=["--log-stream", self.receiver.url])
        self.flow_times = []  # (time, seconds one flow took)
        self.lock = threading.Lock()
        self.stop_clients = threading.Event()

    def start(self):
        self.server.start_healthy(timeout=60)
        self.cluster.nodes = {"A": self.server}
        self.cluster.redirect = demo_redirect_uri(self.server.base)
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(2)]
        for thread in self.threads:
            thread.start()

    def client(self):
        while not self.stop_clients.is_set():
            started = time.monotonic()
            try:
                _, code, verifier = self.cluster.flow(new_session(), self.server)
                if code and self.cluster.redeem(self.server, code, verifier).status_code == 200:
                    with self.lock:
                        self.flow_times.append((started, time.monotonic() - started))
            except (requests.RequestException, CheckFailed):
                time.sleep(0.2)  # the server is being restarted
            time.sleep(0.05)

    def head(self):
        return requests.get(self.server.base + "healthz", timeout=5).json()["journal_sequence"]

    def metrics(self):
        text = requests.get(self.server.base + "metrics", timeout=5).text
        values = {}
        for line in text.splitlines():
            if line.startswith("authledger_log_stream_"):
                name, _, value = line.rpartition(" ")
                values[name.split("{")[0]] = float(value)
        return values

    def caught_up(self, since):
        """Waits until the receiver holds every event up to the head read now; returns the seconds it took."""
        target = self.head()
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while set(range(1, target + 1)) - set(self.receiver.received()):
            expect(time.monotonic() < deadline, "the receiver lacks %d events up to #%d %d s on" % (
                len(set(range(1, target + 1)) - set(self.receiver.received())), target, CATCH_UP_SECONDS))
            time.sleep(0.1)
        return time.monotonic() - since

    def flows_between(self, start, end):
        with self.lock:
            return [seconds for t, seconds in self.flow_times if start <= t < end]

    # -- the checks

    def check_delivery(self):
        time.sleep(3)
        took = self.caught_up(time.monotonic())
        deadline = time.monotonic() + 10
        while self.metrics().get("authledger_log_stream_lag_events", -1) != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        metrics = self.metrics()
        # Flows may still be appending: the lag is 0 once it catches up between two batches.
        expect(metrics.get("authledger_log_stream_holding") == 1, "the node does not hold the stream: %s" % metrics)
        return "%d events delivered (caught up %.1f s after asked); /metrics: lag %d, delivered to #%d" % (
            len(set(self.receiver.received())), took, metrics.get("authledger_log_stream_lag_events", -1),
            metrics.get("authledger_log_stream_delivered_sequence", -1))

    def check_refusals(self):
        before = self.metrics().get("authledger_log_stream_failed_requests", 0)
        self.receiver.mode = "fail"
        time.sleep(3)
        self.receiver.mode = "ok"
        healed = time.monotonic()
        took = self.caught_up(healed)
        failed = self.metrics().get("authledger_log_stream_failed_requests", 0) - before
        expect(failed >= 1, "no failed request counted while the receiver answered 500")
        return "500 for 3 s: %d refused requests counted; caught up %.1f s after it answered 200 again" % (failed, took)

    def check_stall(self):
        with self.lock:
            baseline = [seconds for _, seconds in self.flow_times[-20:]]
        self.receiver.mode = "stall"
        stalled = time.monotonic()
        time.sleep(15)
        self.receiver.mode = "ok"
        healed = time.monotonic()
        during = self.flows_between(stalled, healed)
        expect(len(during) >= 5, "only %d flows completed while the receiver stalled" % len(during))
        typical, slowest = statistics.median(baseline or during), max(during)
        expect(statistics.median(during) < max(1.0, 3 * typical),
               "flows slowed while the receiver stalled: median %.2f s, before %.2f s" % (statistics.median(during), typical))
        took = self.caught_up(healed)
        return "stalled 15 s: %d flows completed meanwhile (median %.2f s, before %.2f s, slowest %.2f s); caught up %.1f s after" % (
            len(during), statistics.median(during), typical, slowest, took)

    def check_receiver_restart(self):
        self.receiver.stop()
        time.sleep(3)
        self.receiver.start()
        restarted = time.monotonic()
        return "receiver closed 3 s, then listening again: caught up %.1f s after" % self.caught_up(restarted)

    def check_server_killed(self):
        time.sleep(1)
        self.server.kill()
        self.server.start_healthy(timeout=60)
        restarted = time.monotonic()
        took = self.caught_up(restarted)
        # The restarted server signs with the same journal key: it is the same node, and takes the stream
        # back at once rather than wait out the lease of the one that was killed (15 s).
        expect(took < 10, "the restarted server took %.1f s to deliver again" % took)
        return "server SIGKILLed under traffic and restarted: caught up %.1f s after" % took

    def check_everything(self):
        self.stop_clients.set()
        for thread in self.threads:
            thread.join(timeout=60)
        took = self.caught_up(time.monotonic())
        head = self.head()
        received = self.receiver.received()
        missing = set(range(1, head + 1)) - set(received)
        expect(not missing, "events never delivered: %s" % sorted(missing)[:10])
        # New events arrive in order: each batch continues from the highest sequence seen or repeats.
        seen = 0
        for header, sequences in list(self.receiver.batches):
            expect(sequences == sorted(sequences) and len(set(sequences)) == len(sequences), "a batch out of order: %s" % header)
            expect(not sequences or sequences[0] <= seen + 1, "events skipped before batch %s (highest so far #%d)" % (header, seen))
            seen = max([seen] + sequences)
        clear = [body for body in self.receiver.bodies if b'"client_ip":"127.0.0.1"' in body]
        expect(not clear, "%d bodies hold the client's address in clear" % len(clear))
        duplicates = len(received) - len(set(received))
        self.summary = (head, len(self.receiver.batches), duplicates, self.receiver.requests)
        return "all %d events delivered (caught up %.1f s), in order, %d batches, %d events twice (at least once), no address in clear" % (
            head, took, len(self.receiver.batches), duplicates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    authledger, replay = binaries(args.bin)
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="authledger-log-stream-"))
    test = StreamTest(authledger, replay, work)
    results = []
    try:
        test.start()
        results = run_checks([("1 delivery", test.check_delivery), ("2 refusals", test.check_refusals), ("3 stall", test.check_stall),
                              ("4 receiver restarted", test.check_receiver_restart), ("5 server killed", test.check_server_killed),
                              ("6 every event, in order, at least once", test.check_everything)], test.cluster)
    finally:
        test.stop_clients.set()
        test.server.kill()
        test.receiver.stop()
    failed = [name for name, ok in results if not ok]
    print("log stream: head #%d, %d batches, %d duplicates, %d requests; %.0f s" % (getattr(test, "summary", (0, 0, 0, 0)) + (time.monotonic() - began,)))
    if failed or args.keep:
        print("log stream: scratch directory kept: %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("log stream: %d passed, %d failed%s" % (len(results) - len(failed), len(failed), (": " + ", ".join(failed)) if failed else ""))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
