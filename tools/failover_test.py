#!/usr/bin/env python3
"""A real PostgreSQL failover under three nodes' traffic (issue #19): the primary is killed (SIGKILL to every
process of it) and its streaming replica promoted, while client threads run full flows (/authorize, login and
consent, the code exchanged) at every node.

    python3 tools/failover_test.py --bin .build/debug [--mode sync|async|both] [--keep]

The nodes are given both servers in one store URL, `postgres://postgres@PRIMARY,REPLICA/authledger`: a new
connection tries them in turn and keeps the one that takes writes (`target_session_attrs=read-write`, the
default with several hosts). Nothing is re-pointed and no node is restarted to follow the failover.

sync: the replica is the primary's synchronous standby (a commit is acknowledged once the replica has flushed
it). After the promotion every node completes flows again, without a restart; then every code a client
received is in the journal, every token response 200 has its `auth.token.issued`, no code was exchanged twice,
and the journal verifies pinned to the genesis key (`verify --public-key`): nothing acknowledged was lost.

async: the replica streams through a fault proxy, which is stalled for a few seconds before the primary is
killed, so that the primary acknowledges events the replica never receives (as a lagging replica does). After
the promotion, every node must detect that events it appended or saw are gone and stop appending (its
/healthz answers 503 naming the lost event), rather than chain new events over the gap: the promoted journal
gains no event, it still verifies pinned to the genesis key, and the codes clients received that it lacks were
all received before the promotion. Then one node is restarted (the operator's decision to carry on from what
the store holds): it serves again, and the journal still verifies.

Prints a line per check and the figures; exits 1 on any failure.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "faults"))
from authledger_e2e import binaries, free_port, run_replay  # noqa: E402
from cluster_test import POSTGRES, CheckFailed, expect, run_checks  # noqa: E402
from network_fault_test import FaultCluster  # noqa: E402
from tcp_proxy import FaultProxy  # noqa: E402
import requests  # noqa: E402

TRAFFIC_SECONDS = 4
PROMOTION_DELAY = 1.0  # what an orchestrator takes to notice the primary is gone
DETECTION_SECONDS = 20


def psql():
    return str(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]) if Path("/usr/lib/postgresql").exists() else "psql"


class FailoverCluster(FaultCluster):
    """Three nodes on a primary and its streaming replica, both named in their store URL."""

    def __init__(self, authledger, replay, work, mode):
        super().__init__(authledger, replay, work)
        self.mode = mode
        self.replica_dir = work / "replica"
        self.replica_port = free_port()
        self.stream_proxy = None
        self.figures = {}

    def node_store(self, name):
        return self.store

    def start_databases(self):
        self.postgres("start")
        stream_port = self.pg_port
        if self.mode == "async":
            # The replication stream passes through a proxy, so that the replica can be made to lag.
            self.stream_proxy = FaultProxy(self.pg_port)
            stream_port = self.stream_proxy.port
        result = subprocess.run([str(POSTGRES), "replica", str(self.replica_dir), str(self.replica_port), str(self.pg_dir), str(self.pg_port),
                                 self.mode, str(stream_port)], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise CheckFailed("tools/postgres replica failed: %s" % (result.stdout + result.stderr)[-500:])
        self.store = self.direct = "postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/authledger" % (self.pg_port, self.replica_port)

    def stop_databases(self):
        for directory in (self.replica_dir, self.pg_dir):
            subprocess.run([str(POSTGRES), "stop", str(directory)], capture_output=True, timeout=120)
        if self.stream_proxy:
            self.stream_proxy.close()

    def events_on(self, port):
        """How many events the journal on the server at `port` holds."""
        result = subprocess.run([psql(), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "authledger", "-qtAc",
                                 "SELECT count(*) FROM authledger_entries WHERE tbl = 'events'"],
                                capture_output=True, text=True, timeout=60, env=dict(os.environ, PGSSLMODE="require"))
        expect(result.returncode == 0, "psql on port %d: %s" % (port, result.stderr[-300:]))
        return int(result.stdout.strip())

    def fail_over(self):
        """Kills the primary, waits as an orchestrator would, promotes the replica; returns the promotion's time."""
        subprocess.run([str(POSTGRES), "kill", str(self.pg_dir)], check=True, capture_output=True, timeout=60)
        self.faults += 1
        time.sleep(PROMOTION_DELAY)
        subprocess.run([str(POSTGRES), "promote", str(self.replica_dir)], check=True, capture_output=True, timeout=120)
        return time.monotonic()

    def pinned_verify(self):
        """`verify --public-key` pinned to the genesis key (A's), on the promoted server: (exit code, first line)."""
        store = ["--store", self.store, "--journal", str(self.keys)]
        exported = subprocess.run([str(self.authledger), "keys", "export-public"] + store, capture_output=True, text=True, timeout=60)
        expect(exported.returncode == 0, "keys export-public --store: %s" % (exported.stdout + exported.stderr)[-300:])
        pinned = self.work / "pinned.keys"
        pinned.write_text(exported.stdout.splitlines()[0] + "\n")
        result = run_replay(self.replay, ["verify", "--public-key", str(pinned)] + store, timeout=300)
        expect(result.returncode == 0, "verify --public-key on the promoted replica: %s" % (result.stdout + result.stderr)[-400:])
        return result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""

    # -- sync

    def check_sync_failover(self):
        time.sleep(TRAFFIC_SECONDS)
        before = self.events_on(self.pg_port)
        promoted = self.fail_over()
        took = self.recovered("ABC", promoted)
        time.sleep(TRAFFIC_SECONDS)
        self.figures["recovery"] = took
        return "primary killed at %d events; replica promoted %.1f s later; every node completed a flow %.1f s after the promotion, without a restart" % (
            before, PROMOTION_DELAY, took)

    def check_sync_nothing_lost(self):
        detail = self.check_nothing_lost()  # stops the clients; every received code and 200 in the journal, none twice
        return "%s; pinned: %s" % (detail.replace("; the journal verifies", ""), self.pinned_verify())

    # -- async

    def node_refusal(self, name):
        """Node `name`'s /healthz answer when it is 503, else None."""
        try:
            response = requests.get(self.nodes[name].base + "healthz", timeout=5)
        except requests.RequestException:
            return None
        return response.json().get("reason", "") if response.status_code == 503 else None

    def check_async_failover(self):
        time.sleep(TRAFFIC_SECONDS)
        self.stream_proxy.stall()  # the replica receives nothing more: it lags
        self.faults += 1
        stalled = time.monotonic()
        time.sleep(3)
        acknowledged = self.events_on(self.pg_port)
        with self.outcomes_lock:
            during_stall = sum(1 for t, _, code, _ in self.outcomes if code and t >= stalled)
        promoted = self.fail_over()
        kept = self.events_on(self.replica_port)
        expect(kept < acknowledged, "the replica was not behind (%d events, the primary %d): nothing to lose" % (kept, acknowledged))
        # Every node must stop appending once it finds its events gone (the clients keep trying meanwhile).
        deadline = time.monotonic() + DETECTION_SECONDS
        refusals = {}
        while len(refusals) < 3 and time.monotonic() < deadline:
            for name in "ABC":
                if name not in refusals:
                    reason = self.node_refusal(name)
                    if reason and "lost commits" in reason:
                        refusals[name] = (time.monotonic() - promoted, reason)
            time.sleep(0.2)
        expect(len(refusals) == 3, "nodes that did not stop appending within %d s of the promotion: %s" % (
            DETECTION_SECONDS, sorted(set("ABC") - set(refusals))))
        time.sleep(3)  # the clients go on trying: nothing may be appended
        self.stop_clients.set()
        for thread in self.threads:
            thread.join(timeout=60)
        after = self.events_on(self.replica_port)
        expect(after == kept, "events were appended over the gap: the promoted journal had %d, now %d" % (kept, after))
        expect(all(node.alive for node in self.nodes.values()), "a node exited")

        # The codes the clients received that the promoted journal lacks: all from before the promotion.
        issued = self.issued_code_hashes()
        with self.outcomes_lock:
            received = [(t, code) for t, _, code, _ in self.outcomes if code]
        lost = [t for t, code in received if hashlib.sha256(code.encode()).hexdigest() not in issued]
        expect(lost, "no received code is missing: the failover lost nothing, so the check proved nothing")
        expect(max(lost) < promoted, "a code missing from the journal was received after the promotion")
        after_promotion = sum(1 for t, _ in received if t >= promoted)
        expect(after_promotion == 0, "%d codes were issued after the promotion" % after_promotion)
        self.figures.update(acknowledged=acknowledged, kept=kept, lost_codes=len(lost), detection=max(t for t, _ in refusals.values()))
        return ("replica stalled for 3 s (%d codes issued meanwhile), primary killed at %d events, the promoted replica had %d: "
                "%d received codes lost; all three nodes had stopped appending %.1f s after the promotion (/healthz: %s); "
                "no event appended after the promotion, no code issued" % (
                    during_stall, acknowledged, kept, len(lost), self.figures["detection"], refusals["A"][1][:110]))

    def issued_code_hashes(self):
        result = run_replay(self.replay, ["timeline", "--store", self.store, "--journal", str(self.keys), "--format", "jsonl"], timeout=300)
        expect(result.returncode == 0, "timeline --store failed: %s" % result.stderr[-300:])
        return {(json.loads(line).get("payload") or {}).get("code_hash") for line in result.stdout.splitlines()
                if json.loads(line)["type"] == "auth.code.issued"}

    def check_async_verifies_and_restart(self):
        before = self.pinned_verify()
        node = self.nodes["A"]
        node.stop(timeout=30)
        node.start()
        node.wait_healthy(timeout=60)
        code, status = self.one_flow("A")
        expect(code and status == 200, "node A, restarted, completed no flow (code %r, token %r)" % (code, status))
        expect(self.node_refusal("B") is not None, "node B, not restarted, appends again")
        return "the promoted journal verifies pinned (%s); node A restarted continues from it (a flow, code exchanged), B and C still refuse; %s" % (
            before, self.pinned_verify())


def run_mode(mode, authledger, replay, clients, keep):
    work = Path(tempfile.mkdtemp(prefix="authledger-failover-%s-" % mode))
    os.chmod(work, 0o755)  # as root, PostgreSQL runs as `postgres` and must reach work/pg
    cluster = FailoverCluster(authledger, replay, work, mode)
    checks = {
        "sync": [("sync 1 failover under traffic", cluster.check_sync_failover),
                 ("sync 2 nothing acknowledged lost", cluster.check_sync_nothing_lost)],
        "async": [("async 1 lost commits detected, appending stopped", cluster.check_async_failover),
                  ("async 2 verifies; a restarted node carries on", cluster.check_async_verifies_and_restart)],
    }[mode]
    results = []
    try:
        cluster.start_databases()
        cluster.start_nodes()
        cluster.threads = [threading.Thread(target=cluster.client, args=(name,), daemon=True) for name in "ABC" for _ in range(clients)]
        for thread in cluster.threads:
            thread.start()
        results += run_checks(checks, cluster, stop_at_failure=True)
    except Exception as error:  # noqa: BLE001
        results.append(("%s start" % mode, False))
        print("FAIL %s start: %s\n%s" % (mode, error, traceback.format_exc()), flush=True)
    finally:
        cluster.stop_clients.set()
        for node in cluster.nodes.values():
            node.kill()
        cluster.stop_databases()
    failed = [name for name, ok in results if not ok]
    if failed or keep:
        print("failover: scratch directory kept: %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return results, cluster


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--mode", choices=("sync", "async", "both"), default="both")
    parser.add_argument("--clients", type=int, default=2, help="client threads per node (default 2)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    authledger, replay = binaries(args.bin)
    began = time.monotonic()
    results = []
    for mode in (("sync", "async") if args.mode == "both" else (args.mode,)):
        outcome, cluster = run_mode(mode, authledger, replay, args.clients, args.keep)
        results += outcome
        print("failover %s: %s" % (mode, ", ".join("%s %s" % (k, ("%.1f s" % v) if isinstance(v, float) else v)
                                                   for k, v in cluster.figures.items())), flush=True)
    failed = [name for name, ok in results if not ok]
    print("failover: %d passed, %d failed%s; %.0f s" % (len(results) - len(failed), len(failed),
                                                       (": " + ", ".join(failed)) if failed else "", time.monotonic() - began))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
