#!/usr/bin/env python3
"""Cluster benchmark: /authorize and /oauth/token throughput with 1, 2 and 3 `authledger serve` nodes on one
PostgreSQL journal, beside the LMDB single node, all as ratios to GET /healthz on the LMDB node in the same run.

    tools/http/cluster_bench.py --bin .build/release [--seconds 10] [--connections 32] [--threads 2] [--nodes 1,2,3]
                                [--cpu-quota CORES] [--connections-per-node N]

The requests are those of tools/http/bench.py (whose functions this script uses): GET /authorize for a
logged-in user who already consented (session cookie; every request runs the full decision, issues a code
and makes its events durable before the 302), and POST /oauth/token redeeming pre-issued codes for an
EdDSA access token (bench.py's row 2a). Each measurement lasts --seconds with --connections in all (or, with
--connections-per-node, that many at every node: the load grows with the nodes).

1. LMDB single node (embedded journal, the default): GET /healthz (the baseline of every ratio), then
   /authorize, then /oauth/token.
2. For 1, 2 and 3 nodes on a fresh PostgreSQL cluster each (tools/postgres start, in a scratch directory, on
   a free port; the first node applies the tenant and is healthy before the others start; all share the key
   files of one --journal base): /authorize with one wrk per node at once, the connections split between
   them, rates summed; then codes issued through every node, interleaved and dealt out again so that each
   node redeems codes issued at the others too, and /oauth/token the same way.

During every run the script measures the CPU time of each process (/proc/PID/stat: the nodes; PostgreSQL:
the postmaster, its backends and the backends it reaped; the load generator: wrk and this script; what is
left of the machine's busy time is "other", named by process), and for PostgreSQL runs samples
pg_stat_activity and pg_locks every 50 ms (from one psql session, its backend left out of the CPU figures):
how often the journal's advisory lock is held, how many backends wait for it (wait_event_type Lock,
wait_event advisory), what its holder is doing (running in PostgreSQL, or idle in transaction: waiting for
its node's next query); and it counts the journal's events and the database's connections before and after
(events per second; events per request: an /authorize appends 3, an exchange 1, and requests still in
flight when wrk stops add a little). From those figures, not from assumptions, each PostgreSQL run names
its bottleneck (the first that holds, then any other that also does; see bottleneck()):
  1. the journal lock, contended: held in at least 90% of the samples with at least 0.5 backends waiting
     for it on average (the batches of all nodes are serialized under it: more nodes add nothing);
  2. the machine, its cores at least 90% busy with the benchmark's own processes;
  3. the journal lock, uncontended but held in at least 90% of the samples (one node's batches back to back);
  4. the machine, at least 90% busy with other processes taking part (a disturbed run: a WARNING says so);
  5. else whichever of the authledger nodes and PostgreSQL used more CPU.
A last line names the bottleneck of the largest configuration beside its rate relative to one node.

The journal lock's ceiling (batches per second it can pass x events per batch) is measured from the nodes'
own writer counters (GET /metrics before and after each run: commits, the requests they carried, and the
time each committed batch spent from asking for the lock to the end of its catch-up, then from there to the
end of its commit, which is under the lock): "lock" lines give batches per second, requests and events per
batch, both times per batch, and the ceiling 1 / (time under the lock after the catch-up) x events per batch
beside the events per second measured, and the writer thread's own CPU time a batch (most of it under the
lock: the node's share of the hold, before its cap stretches it). The first statement's own time under the lock (from the grant to its
reply) is not in that time: the ceiling is an upper bound. "reads" lines give, from the same counters, the
requests' read statements per request served (a logged-in /authorize reads in one; an exchange in one at the
node that issued its code, two at another) and the reads answered by waiting on a thread instead (a read too
large to await, or no pooled connection in time): a run whose figures fall with waited reads high is one to
look at before comparing it.

With --cpu-quota CORES (for example 0.3), every node runs in a cgroup of its own (cgroup v1, the cpu
controller: cpu.cfs_quota_us = CORES x cpu.cfs_period_us), so each node has the CPU share of a small separate
machine while PostgreSQL, wrk and this script stay uncapped: the honest way to model separate machines on one
box (needs root and /sys/fs/cgroup/cpu). The results lines then start with "cluster-capped: " instead, and
two more lines give the ratios the performance issue sets goals for, per endpoint:
  cluster-capped: ratio /authorize  PG 1 node / LMDB 1 node  <ratio>x  (each node capped at CORES CPU)
  cluster-capped: ratio /authorize  PG 3 nodes / PG 1 node  <ratio>x  ...

Every line of the results starts with "cluster: " (tools/bench_summary.py reads them):
  cluster: healthz       LMDB 1 node   <rate>/s  1.00x healthz
  cluster: /authorize    <LMDB 1 node | PG n node(s)>  <rate>/s  <ratio>x healthz  ...
  cluster: /oauth/token  ...
  cluster: cpu / cluster: postgres / cluster: lock / cluster: reads / cluster: bottleneck / cluster: log  (details of each run)

The issuer of the tenant is bench.py's BASE (a name only here: the nodes listen on free ports).
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import quote

import requests

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from bench import EDDSA_API, REDIRECT, exchange, issue_codes, jwt_alg, login, parse_wrk, tenant  # noqa: E402
import bench  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from authledger_e2e import free_port  # noqa: E402 - one port allocator for every tool

POSTGRES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "postgres")
SCRIPTS = os.path.dirname(os.path.abspath(__file__))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.05
# Ports no node or PostgreSQL of this benchmark may take: 55432 (another session's PostgreSQL), the
# single-node benchmark's.
RESERVED_PORTS = {55432, bench.PORT}


# --- CPU caps ------------------------------------------------------------------------------------------------

CGROUP_CPU = "/sys/fs/cgroup/cpu"


class CPUCage:
    """One cgroup v1 `cpu` group per node, each capped at `cores` CPUs (cpu.cfs_quota_us over a period,
    100 ms by default), under a parent group named after this script's process; removed by close().

    Within a period a capped node runs at full speed until its quota is used, then not at all until the
    next period: a node that holds the journal lock when its quota runs out holds it until then. A
    shorter period spreads the same share more evenly (closer to a slower machine that never stops)."""

    def __init__(self, cores, period_ms=100):
        self.PERIOD_US = int(period_ms * 1000)
        if not os.path.isfile(os.path.join(CGROUP_CPU, "cpu.cfs_quota_us")):
            raise SystemExit("--cpu-quota needs the cgroup v1 cpu controller at %s (and root)" % CGROUP_CPU)
        self.cores = cores
        self.parent = os.path.join(CGROUP_CPU, "authledger-cluster-bench-%d" % os.getpid())
        os.makedirs(self.parent, exist_ok=True)
        self.groups = []

    def group(self, name):
        """A new capped group; returns the function that moves the calling process into it (a preexec_fn:
        the node is capped from its first instruction, its threads with it)."""
        path = os.path.join(self.parent, name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "cpu.cfs_period_us"), "w") as handle:
            handle.write(str(self.PERIOD_US))
        with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as handle:
            handle.write(str(int(self.cores * self.PERIOD_US)))
        self.groups.append(path)

        def join():
            with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                handle.write("0")  # 0: the writing process

        return join

    def throttled_seconds(self):
        """{group name: seconds its processes were held back by the quota} (cpu.stat throttled_time)."""
        result = {}
        for path in self.groups:
            try:
                with open(os.path.join(path, "cpu.stat")) as handle:
                    stat = dict(line.split() for line in handle if line.strip())
                result[os.path.basename(path)] = int(stat.get("throttled_time", 0)) / 1e9
            except OSError:
                pass
        return result

    def close(self):
        """Removes the groups (their processes have exited by then; a group still in use is left)."""
        for path in self.groups + [self.parent]:
            try:
                os.rmdir(path)
            except OSError:
                pass


# --- processes -------------------------------------------------------------------------------------------

def processes():
    """Every process now: {pid: (name, ppid, utime + stime, cutime + cstime)}, times in clock ticks."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                line = handle.read()
        except OSError:
            continue
        fields = line[line.rindex(")") + 2:].split()  # fields[0] is field 3 (state) of proc(5)
        name = line[line.index("(") + 1:line.rindex(")")].split("/")[0]  # kworker/u8:2 -> kworker
        table[int(entry)] = (name, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))
    return table


def descendants(table, roots):
    """The roots and every process below them."""
    found, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, row in table.items() if row[1] in frontier} - found
        found |= frontier
    return found


def machine_ticks():
    """(busy, interrupts, total) ticks of all cores, from /proc/stat (idle and iowait are not busy)."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest time is within user)
    return total - values[3] - values[4], values[5] + values[6], total


def own_and_children_seconds():
    """CPU seconds of this script and of its reaped children (the wrk processes)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class CPUMeter:
    """CPU used over a run, in cores: by each node; by PostgreSQL (the postmaster, its live children but
    `exclude`, and the children it reaped: its cutime + cstime); by the load generator (this script and
    its reaped children: the wrk processes); by the whole machine (/proc/stat); and what is left, "other",
    with the other processes that used most of it by name (kernel threads included; interrupt time apart)."""

    def __init__(self, node_pids, postmaster=None, exclude=()):
        self.node_pids, self.postmaster, self.exclude = node_pids, postmaster, set(exclude)

    def snapshot(self):
        table = processes()
        postgres = 0
        if self.postmaster in table:
            postgres = table[self.postmaster][2] + table[self.postmaster][3]
            postgres += sum(row[2] for pid, row in table.items() if row[1] == self.postmaster and pid not in self.exclude)
        ours = descendants(table, [os.getpid()] + self.node_pids + ([self.postmaster] if self.postmaster else []))
        return {"time": time.monotonic(), "nodes": [table[pid][2] if pid in table else 0 for pid in self.node_pids],
                "postgres": postgres, "load": own_and_children_seconds(), "machine": machine_ticks(),
                "others": {pid: (row[0], row[2]) for pid, row in table.items() if pid not in ours}}

    def start(self):
        self.before = self.snapshot()

    def stop(self):
        after = self.snapshot()
        before = self.before
        wall = after["time"] - before["time"]
        nodes = [(b - a) / CLOCK_TICKS / wall for a, b in zip(before["nodes"], after["nodes"])]
        busy = after["machine"][0] - before["machine"][0]
        total = after["machine"][2] - before["machine"][2]
        cores = os.cpu_count() or 1
        machine = busy / max(1, total) * cores
        result = {"wall": wall, "cores": cores, "nodes": nodes, "nodes_total": sum(nodes),
                  "postgres": (after["postgres"] - before["postgres"]) / CLOCK_TICKS / wall,
                  "load": (after["load"] - before["load"]) / wall, "machine": machine,
                  "interrupts": (after["machine"][1] - before["machine"][1]) / max(1, total) * cores}
        result["other"] = max(0.0, machine - result["nodes_total"] - result["postgres"] - result["load"])
        by_name = {}
        for pid, (name, ticks) in after["others"].items():
            earlier = before["others"].get(pid)
            used = ticks - (earlier[1] if earlier and earlier[0] == name else 0)
            by_name[name] = by_name.get(name, 0) + used / CLOCK_TICKS / wall
        result["other_names"] = sorted(((name, value) for name, value in by_name.items() if value >= 0.01), key=lambda item: -item[1])
        return result


# --- PostgreSQL --------------------------------------------------------------------------------------------

def psql_command(port):
    """psql on the private cluster (the version's own binary; as root through `runuser -u postgres`, as
    tools/postgres does)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), key=lambda path: [int(part) if part.isdigit() else part
                                                                                      for part in re.split(r"(\d+)", path)])
    command = [candidates[-1] if candidates else "psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "authledger",
               "-qtAX", "-F", "|"]
    return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + command


def psql(port, sql):
    result = subprocess.run(psql_command(port) + ["-c", sql], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit("psql failed: %s" % result.stderr.strip())
    return [line.split("|") for line in result.stdout.splitlines() if line]


def journal_counts(port):
    """(events, all entries) in the journal's table, and the connections (sessions) the database has had."""
    row = psql(port, "SELECT count(*) FILTER (WHERE tbl = 'events'), count(*), "
                     "(SELECT sessions FROM pg_stat_database WHERE datname = 'authledger') FROM authledger_entries")[0]
    return int(row[0]), int(row[1]), int(row[2] or 0)


SAMPLE = """SELECT 'activity', coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(wait_event, ''), count(*)
  FROM pg_stat_activity WHERE datname = 'authledger' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  GROUP BY 2, 3, 4
UNION ALL
SELECT 'holder', coalesce(a.state, ''), coalesce(a.wait_event_type, ''), coalesce(a.wait_event, ''), count(*)
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted
  GROUP BY 2, 3, 4"""


class PostgresSampler(threading.Thread):
    """Samples the journal's backends every SAMPLE_SECONDS from one psql session: what each is doing or
    waiting for, and who holds the journal's advisory lock."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.process = subprocess.Popen(psql_command(port), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.backend = int(self.query("SELECT pg_backend_pid()")[0][0])
        self.halt = threading.Event()
        self.samples = self.held = 0
        self.activity, self.holder = {}, {}

    def query(self, sql):
        self.process.stdin.write(sql + ";\n\\echo __end__\n")
        self.process.stdin.flush()
        rows = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("psql ended")
            line = line.rstrip("\n")
            if line == "__end__":
                return rows
            if line:
                rows.append(line.split("|"))

    def run(self):
        while not self.halt.wait(SAMPLE_SECONDS):
            try:
                rows = self.query(SAMPLE)
            except (OSError, RuntimeError):
                return
            self.samples += 1
            held = False
            for kind, state, event_type, event, count in rows:
                what = (state, event_type + (":" + event if event else ""))
                table = self.activity if kind == "activity" else self.holder
                table[what] = table.get(what, 0) + int(count)
                held = held or kind == "holder"
            self.held += held

    def finish(self):
        self.halt.set()
        if self.is_alive():
            self.join()
        try:
            self.process.stdin.close()
        except OSError:
            pass
        self.process.wait()
        samples = max(1, self.samples)
        waiting = sum(count for (state, wait), count in self.activity.items() if wait == "Lock:advisory")
        return {"samples": self.samples, "held": self.held / samples, "waiters": waiting / samples,
                "activity": {what: count / samples for what, count in self.activity.items()},
                "holder": {what: count / samples for what, count in self.holder.items()}}


def start_postgres(directory, port):
    result = subprocess.run([POSTGRES, "start", directory, str(port)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit("tools/postgres start failed (%d): %s" % (result.returncode, (result.stdout + result.stderr)[-800:]))
    with open(os.path.join(directory, "data", "postmaster.pid")) as handle:
        postmaster = int(handle.readline())
    return result.stdout.strip().splitlines()[-1], postmaster


def stop_postgres(directory):
    subprocess.run([POSTGRES, "stop", directory], capture_output=True)


# --- nodes and wrk ---------------------------------------------------------------------------------------------

class Node:
    def __init__(self, bin_dir, arguments, log_path, cage=None):
        self.port = free_port(avoid=RESERVED_PORTS)
        self.base = "http://127.0.0.1:%d/" % self.port
        self.log_path = log_path
        self.log = open(log_path, "w")
        join = cage.group(os.path.splitext(os.path.basename(os.path.dirname(log_path)) + "-" + os.path.basename(log_path))[0]) if cage else None
        self.process = subprocess.Popen([os.path.join(bin_dir, "authledger"), "serve", "--port", str(self.port)] + arguments,
                                        stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=join)

    def wait_healthy(self, seconds=180):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("node on port %d exited with status %d:\n%s" % (self.port, self.process.returncode, self.tail()))
            try:
                if requests.get(self.base + "healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise SystemExit("node on port %d did not answer GET /healthz in %d s:\n%s" % (self.port, seconds, self.tail()))

    def tail(self, lines=20):
        with open(self.log_path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def run_wrk(arguments, environment=None):
    """bench.py's wrk measurement, keeping socket errors too: (rate, p99 ms, non-2xx/3xx, requests, socket errors)."""
    output = subprocess.run(["wrk"] + arguments, capture_output=True, text=True, env={**os.environ, **(environment or {})}).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return parse_wrk(output) + (sum(int(value) for value in errors.groups()) if errors else 0,)


# The most codes a capped run's token run takes from one node: below the codes a node keeps for their
# redemption (AuthLedger.keptCodeCapacity, 16,384), so that all of them are still kept when it starts.
KEPT_CODES_PER_NODE = 15_000
# How long a code may be redeemed (TokenPolicy's code lifetime in the tenant the benchmark applies).
CODE_LIFETIME_SECONDS = 60


def split(total, parts):
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def concurrently(calls):
    """Runs the calls at once (one thread each); returns their results in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


class Cluster:
    """The nodes of one configuration and what is measured on them."""

    def __init__(self, args, nodes, label, postgres=None):
        self.args, self.nodes, self.label, self.postgres = args, nodes, label, postgres  # postgres: (port, postmaster)
        count = len(nodes)
        if args.connections_per_node:
            # The same load on every node, however many: what adding nodes adds when the offered load grows
            # with them (one wrk thread each).
            self.connections = [args.connections_per_node] * count
            self.threads = [1] * count
        else:
            self.connections = split(args.connections, count)
            self.threads = [max(1, min(connections, args.threads // count)) for connections in self.connections]

    def measure(self, per_node_arguments, environments=None):
        """One wrk per node at once for --seconds, with CPU (and PostgreSQL) measured around them."""
        environments = environments or [None] * len(self.nodes)
        counts_before = journal_counts(self.postgres[0]) if self.postgres else None
        writers_before = [writer_counters(node) for node in self.nodes] if self.postgres else None
        sampler = PostgresSampler(self.postgres[0]) if self.postgres else None
        meter = CPUMeter([node.process.pid for node in self.nodes], self.postgres and self.postgres[1],
                         [sampler.backend] if sampler else [])
        try:
            if sampler:
                sampler.start()
            meter.start()
            runs = concurrently([lambda index=index: run_wrk(
                ["-t", str(self.threads[index]), "-c", str(self.connections[index]), "-d", "%ds" % self.args.seconds, "--latency"]
                + per_node_arguments[index], environments[index]) for index in range(len(self.nodes))])
            cpu = meter.stop()
        finally:
            sampled = sampler.finish() if sampler else None
        result = {"rate": sum(run[0] for run in runs), "per_node": [run[0] for run in runs], "p99": max(run[1] for run in runs),
                  "non2xx": sum(run[2] for run in runs), "requests": sum(run[3] for run in runs),
                  "socket_errors": sum(run[4] for run in runs), "per_node_requests": [run[3] for run in runs], "cpu": cpu}
        if sampler:
            result["postgres"] = sampled
            time.sleep(1.5)  # requests still in flight when wrk stopped; statistics are flushed within a second
            counts_after = journal_counts(self.postgres[0])
            result["events"] = counts_after[0] - counts_before[0]
            result["entries"] = counts_after[1] - counts_before[1]
            result["sessions"] = counts_after[2] - counts_before[2] - 2  # less the sampler's and that of the count before
            # The lock's ceiling, from the writers' own counters: batches per second it can pass at the time
            # each batch holds it after its catch-up (as its node sees it), times the events of a batch.
            writers_after = [writer_counters(node) for node in self.nodes]
            moved = {key: sum(after[key] - before[key] for before, after in zip(writers_before, writers_after)) for key in WRITER_GAUGES}
            result["writers"] = moved
        return result

    def run(self, session):
        """Logs in at the first node, warms every node, then measures /authorize and /oauth/token (EdDSA)."""
        first = self.nodes[0].base
        query, _ = login(session, base=first)
        eddsa_query, _ = login(session, scope="read:messages", audience=EDDSA_API, base=first)
        # Each node checks the client's secret with Argon2id once (a bounded pool: beyond it, 503) and then
        # remembers it: one exchange at every node first, so the token runs measure exchanges. The code
        # is issued at the first node and redeemed at another: the shared journal at work.
        for node in self.nodes:
            tokens = exchange(login(session, scope="read:messages", audience=EDDSA_API, base=first)[1], base=node.base)
            assert jwt_alg(tokens["access_token"]) == "EdDSA" and "id_token" not in tokens, tokens
        cookie = "; ".join("%s=%s" % (c.name, c.value) for c in session.cookies)
        results = {}
        if self.postgres is None:
            results["healthz"] = self.measure_healthz()
        results["authorize"] = self.measure([["-H", "Cookie: " + cookie, node.base + "authorize?" + query] for node in self.nodes])

        # Codes for the token run, issued at every node at once (codes.lua), as many as the run can use: an
        # exchange at the node that issued its code reads nothing and may run at two or three times the
        # /authorize rate (a run that runs out sends a placeholder, and its 400s make the row invalid). A
        # code lives 60 s: issuing takes 1.2 times its count over the rate (bench.issue_codes), so the count
        # also stays under what the rate issues in the minute less the run and a margin.
        rate = results["authorize"]["rate"]
        lifetime_bound = rate * max(1.0, CODE_LIFETIME_SECONDS - self.args.seconds - 6) / 1.2
        per_node = min(rate * self.args.seconds * 3.2 + min(500, rate * 10), lifetime_bound) / len(self.nodes)
        # A capped PostgreSQL node keeps the newest AuthLedger.keptCodeCapacity codes it issued (16,384) for
        # their redemption and reads an older one as another node's: issuing more before the run would
        # measure codes a client could never present (a client redeems its code within a second or two of
        # its issue). Uncapped nodes exchange faster than that many codes last; LMDB keeps none.
        if self.postgres is not None and self.args.cpu_quota:
            per_node = min(per_node, KEPT_CODES_PER_NODE)
        work = os.path.dirname(self.nodes[0].log_path)
        paths = [os.path.join(work, "codes-issued-%d.txt" % index) for index in range(len(self.nodes))]
        concurrently([lambda index=index: issue_codes(
            eddsa_query, cookie, argparse.Namespace(threads=self.threads[index], connections=self.connections[index]), paths[index],
            count=per_node, rate=max(1.0, results["authorize"]["per_node"][index]), base=self.nodes[index].base)
            for index in range(len(self.nodes))])
        issued = []
        for path in paths:
            with open(path) as handle:
                issued.append(handle.read().split())
        # Dealt out in issue order: the p-th code issued at node j is redeemed at node (j + p) mod n, so that
        # every node redeems codes issued at every node (its own among them), as behind a load balancer
        # that spreads the clients' token requests. (Until session 46 the codes were interleaved and dealt
        # out with the same stride, which gave every node back its own codes.)
        count = len(self.nodes)
        dealt = [[] for _ in range(count)]
        for position in range(max(len(codes) for codes in issued)):
            for source, codes in enumerate(issued):
                if position < len(codes):
                    dealt[(source + position) % count].append(codes[position])
        redeem = []
        for index in range(count):
            path = os.path.join(work, "codes-redeem-%d.txt" % index)
            with open(path, "w") as handle:
                handle.write("\n".join(dealt[index]) + "\n")
            redeem.append(path)
        token_script = os.path.join(SCRIPTS, "token.lua")
        results["token"] = self.measure(
            [["-s", token_script, node.base + "oauth/token"] for node in self.nodes],
            [{"CODES_FILE": redeem[index], "REDIRECT_URI": quote(REDIRECT, safe=""), "WRK_THREADS": str(self.threads[index])}
             for index in range(len(self.nodes))])
        results["token"]["codes"] = sum(len(codes) for codes in dealt)
        results["token"]["codes_per_node"] = [len(codes) for codes in dealt]
        return results

    def measure_healthz(self):
        """GET /healthz on the (single) node with all the connections and threads: the baseline."""
        node = self.nodes[0]
        run = run_wrk(["-t", str(self.threads[0]), "-c", str(self.connections[0]), "-d", "%ds" % self.args.seconds, "--latency",
                       node.base + "healthz"])
        return {"rate": run[0], "per_node": [run[0]], "p99": run[1], "non2xx": run[2], "requests": run[3], "socket_errors": run[4]}


WRITER_GAUGES = {
    "commits": "authledger_journal_commits",
    "requests": "authledger_journal_committed_requests",
    "until_caught_up": "authledger_journal_lock_wait_and_catch_up_seconds",
    "under_lock": "authledger_journal_under_lock_after_catch_up_seconds",
    "writer_cpu": "authledger_journal_writer_cpu_seconds",
    "awaited_statements": "authledger_journal_awaited_statements",
    "awaited_round_trips": "authledger_journal_awaited_round_trips",
    "awaited_reads": "authledger_journal_awaited_reads",
    "waited_reads": "authledger_journal_waited_reads",
}


def writer_counters(node):
    """The journal's counters of `node` now, from its /metrics: the writer's (commits, requests they carried, and
    the seconds its committed batches spent waiting for the lock and catching up, then under the lock after)
    and the requests' reads (statements sent by awaited reads, reads answered by them, reads answered by
    waiting on a thread instead)."""
    text = requests.get(node.base + "metrics", timeout=10).text
    values = {}
    for key, name in WRITER_GAUGES.items():
        match = re.search(r"^%s(?:\{[^}]*\})? ([0-9.eE+-]+)$" % re.escape(name), text, re.MULTILINE)
        values[key] = float(match.group(1)) if match else 0.0
    return values


def log_findings(path, pattern=r"^\S+ (warning|error|critical) |fatal"):
    """Lines of a log at level warning or above (a node's, swift-log text: '<time> <level> <label>: ...';
    PostgreSQL's with its own pattern)."""
    findings = []
    if os.path.exists(path):
        with open(path, errors="replace") as handle:
            for line in handle:
                if re.search(pattern, line, re.IGNORECASE):
                    findings.append(line.rstrip("\n"))
    return findings


# --- the benchmark -----------------------------------------------------------------------------------------

def lmdb_configuration(args, work):
    directory = os.path.join(work, "lmdb")
    os.makedirs(directory)
    tenant_file = os.path.join(directory, "tenant.json")
    with open(tenant_file, "w") as handle:
        json.dump(tenant(bench.BASE), handle)
    node = Node(args.bin, ["--journal", os.path.join(directory, "journal"), "--tenant", tenant_file], os.path.join(directory, "node-0.log"),
                args.cage)
    try:
        node.wait_healthy()
        results = Cluster(args, [node], "LMDB 1 node").run(requests.Session())
    finally:
        node.stop()
    results["logs"] = [log_findings(node.log_path)]
    return results


def postgres_configuration(args, work, count):
    directory = os.path.join(work, "pg-%d" % count)
    os.makedirs(directory)
    tenant_file = os.path.join(directory, "tenant.json")
    with open(tenant_file, "w") as handle:
        json.dump(tenant(bench.BASE), handle)
    pg_dir = os.path.join(directory, "postgres")
    pg_port = free_port(avoid=RESERVED_PORTS)
    nodes = []
    try:
        store, postmaster = start_postgres(pg_dir, pg_port)
        journal = os.path.join(directory, "journal")  # names the shared key files journal.key, journal.tokenkeys
        for index in range(count):
            # The first node applies the tenant and makes the key files; the others start once it is healthy.
            nodes.append(Node(args.bin, ["--store", store, "--journal", journal] + (["--tenant", tenant_file] if index == 0 else []),
                              os.path.join(directory, "node-%d.log" % index), args.cage))
            if index == 0:
                nodes[0].wait_healthy()
        for node in nodes[1:]:
            node.wait_healthy()
        label = "PG %d node%s" % (count, "" if count == 1 else "s")
        results = Cluster(args, nodes, label, postgres=(pg_port, postmaster)).run(requests.Session())
    finally:
        for node in nodes:
            node.stop()
        stop_postgres(pg_dir)
    results["logs"] = [log_findings(node.log_path) for node in nodes]
    results["postgres_log"] = log_findings(os.path.join(pg_dir, "server.log"), r"\b(ERROR|FATAL|PANIC|WARNING):")
    return results


def describe(table, limit=3):
    """'state wait 0.52, ...' for the largest averages of a sampled table."""
    items = sorted(table.items(), key=lambda item: -item[1])[:limit]
    return ", ".join("%s%s %.2f" % (state or "-", " (" + wait + ")" if wait else "", value) for (state, wait), value in items) or "none"


def bottleneck(run, cap=None):
    """(name, evidence): what limits the run, from its measured figures, the first of these that holds (any
    other that also holds follows, after "then"):
      1. the journal lock, contended: held in at least 90% of the samples while at least 0.5 backends wait
         for it on average (nodes queue for the lock: more nodes cannot add throughput);
      2. the machine, saturated by the benchmark's own processes (nodes, PostgreSQL, wrk: at least 90% of
         the cores);
      3. the journal lock, uncontended but always held (one node's batches back to back);
      4. the machine, at least 90% busy with other processes taking part (a disturbed run);
      5. whichever of the authledger nodes and PostgreSQL used more CPU.
    With every node capped at `cap` CPUs (--cpu-quota), nodes that each used at least 90% of their cap come
    second: the cap, standing for a small machine per node."""
    cpu, pg = run["cpu"], run["postgres"]
    cores = cpu["cores"]
    own = cpu["nodes_total"] + cpu["postgres"] + cpu["load"]
    users = sorted([("authledger nodes", cpu["nodes_total"]), ("PostgreSQL", cpu["postgres"]), ("wrk", cpu["load"]),
                    ("other processes", cpu["other"])], key=lambda item: -item[1])
    evidence = "machine %.2f of %d cores busy (%s); journal lock held in %.0f%% of samples, %.2f backends waiting for it on average" % (
        cpu["machine"], cores, ", ".join("%s %.2f" % user for user in users), pg["held"] * 100, pg["waiters"])
    waiting_for_node = sum(value for (state, wait), value in pg["holder"].items() if wait == "Client:ClientRead" or state == "idle in transaction")
    holder = ("its holder was waiting for its node's next query (idle in transaction or ClientRead) in %.0f%% of the samples, "
              "busy in PostgreSQL in %.0f%%" % (waiting_for_node * 100, max(0.0, pg["held"] - waiting_for_node) * 100))
    rules = [
        (pg["held"] >= 0.9 and pg["waiters"] >= 0.5, "the journal lock (contended: the batches of all nodes are serialized under it; %s)" % holder),
        (bool(cap) and min(cpu["nodes"]) >= 0.9 * (cap or 0), "the nodes' CPU cap (%.2f each; they used %s)" % (
            cap or 0, " + ".join("%.2f" % value for value in cpu["nodes"]))),
        (own >= 0.9 * cores, "the %d-core machine (saturated by the benchmark's own processes, most by %s)" % (
            cores, [user for user in users if user[0] != "other processes"][0][0])),
        (pg["held"] >= 0.9 and pg["waiters"] < 0.5, "the journal lock (uncontended but always held: one writer's batches back to back; %s)" % holder),
        (cpu["machine"] >= 0.9 * cores and own < 0.9 * cores, "the %d-core machine (saturated, with other processes using %.2f cores: a disturbed run)" % (
            cores, cpu["other"])),
    ]
    holding = [name for condition, name in rules if condition]
    if not holding:
        holding.append("%s (neither the machine nor the journal lock saturated)" % (
            "authledger node CPU" if cpu["nodes_total"] >= cpu["postgres"] else "PostgreSQL CPU"))
    return holding[0] + "".join("; then " + other for other in holding[1:]), evidence


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32, help="in all, split between the nodes")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads in all, split between the nodes (at least one each)")
    parser.add_argument("--connections-per-node", type=int, default=None, metavar="N",
                        help="instead of --connections and --threads: N connections and one wrk thread at every node, "
                             "so that the offered load grows with the nodes")
    parser.add_argument("--nodes", default="1,2,3", help="the PostgreSQL configurations (numbers of nodes)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (node logs, code files)")
    parser.add_argument("--cpu-quota", type=float, default=None, metavar="CORES",
                        help="cap every node at CORES CPUs, each in its own cgroup (PostgreSQL and wrk uncapped)")
    parser.add_argument("--cpu-period-ms", type=float, default=100, metavar="MS",
                        help="the cap's period (cpu.cfs_period_us): the quota is CORES times this, per period")
    args = parser.parse_args()
    tag = "cluster-capped:" if args.cpu_quota else "cluster:"
    args.bin = os.path.abspath(args.bin)
    counts = [int(count) for count in args.nodes.split(",") if count]  # none: the LMDB node alone
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing (tools/bench installs it)")

    work = tempfile.mkdtemp(prefix="authledger-cluster-bench-")
    os.chmod(work, 0o755)  # as root, PostgreSQL runs as `postgres` and must reach work/pg-N/postgres
    results = {}
    args.cage = CPUCage(args.cpu_quota, args.cpu_period_ms) if args.cpu_quota else None
    try:
        results["LMDB 1 node"] = lmdb_configuration(args, work)
        for count in counts:
            results["PG %d node%s" % (count, "" if count == 1 else "s")] = postgres_configuration(args, work, count)
    finally:
        throttled = args.cage.throttled_seconds() if args.cage else {}
        if args.cage:
            args.cage.close()
        if args.keep:
            print("scratch directory kept: %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    lmdb = results["LMDB 1 node"]
    health = lmdb["healthz"]["rate"]
    pg_one = results.get("PG 1 node")
    if args.connections_per_node:
        print("Cluster benchmark: %d connections and one wrk thread at every node (the load grows with the nodes), %d s each, "
              "%d cores; ratios to GET /healthz on the LMDB node" % (args.connections_per_node, args.seconds, os.cpu_count() or 1))
    else:
        print("Cluster benchmark: %d connections in all (split between the nodes), %d wrk threads in all, %d s each, %d cores; "
              "ratios to GET /healthz on the LMDB node" % (args.connections, args.threads, args.seconds, os.cpu_count() or 1))
    print("")
    if args.cpu_quota:
        print("Every node capped at %.2f CPU in a cgroup of its own (cpu.cfs_quota_us over a %g ms period); PostgreSQL, wrk and "
              "this script uncapped. Seconds each node was held back by its cap: %s" % (
                  args.cpu_quota, args.cpu_period_ms, ", ".join("%s %.1f" % item for item in sorted(throttled.items())) or "none"))
        print("")
    print(tag + " %-13s %-12s %7d/s  1.00x healthz  (p99 %.2f ms, non-2xx/3xx %d, socket errors %d)" % (
        "healthz", "LMDB 1 node", health, lmdb["healthz"]["p99"], lmdb["healthz"]["non2xx"], lmdb["healthz"]["socket_errors"]))
    for key, endpoint in (("authorize", "/authorize"), ("token", "/oauth/token")):
        for label, result in results.items():
            run = result[key]
            extra = []
            if label != "LMDB 1 node":
                extra.append("%.2fx LMDB" % (run["rate"] / lmdb[key]["rate"]))
                if pg_one and label != "PG 1 node":
                    extra.append("%.2fx PG 1 node" % (run["rate"] / pg_one[key]["rate"]))
            details = ["per node %s" % " + ".join("%d" % rate for rate in run["per_node"])] if len(run["per_node"]) > 1 else []
            details += ["p99 %.2f ms" % run["p99"], "non-2xx/3xx %d" % run["non2xx"], "socket errors %d" % run["socket_errors"]]
            if "events" in run:
                details.append("%.0f events/s, %.2f per request" % (run["events"] / run["cpu"]["wall"], run["events"] / max(1, run["requests"])))
            print(tag + " %-13s %-12s %7d/s  %.2fx healthz%s  (%s)" % (
                endpoint, label, run["rate"], run["rate"] / health, "".join("  " + item for item in extra), ", ".join(details)))
    if args.cpu_quota:
        print("")
        pg_largest = [label for label in results if label.startswith("PG ")][-1:]
        for key, endpoint in (("authorize", "/authorize"), ("token", "/oauth/token")):
            pairs = [("PG 1 node", "LMDB 1 node")] + ([(pg_largest[0], "PG 1 node")] if pg_largest and pg_largest[0] != "PG 1 node" else [])
            for numerator, denominator in pairs:
                if numerator in results and denominator in results:
                    print(tag + " ratio %-13s %s / %s  %.2fx  (each node capped at %.2f CPU)" % (
                        endpoint, numerator, denominator, results[numerator][key]["rate"] / max(1, results[denominator][key]["rate"]),
                        args.cpu_quota))
    print("")
    for key, endpoint in (("authorize", "/authorize"), ("token", "/oauth/token")):
        for label, result in results.items():
            cpu, rate = result[key]["cpu"], result[key]["rate"]
            others = ", ".join("%s %.2f" % item for item in cpu["other_names"][:3] + [("interrupts", cpu["interrupts"])])
            print(tag + " cpu %s %s: nodes %.2f cores (%s), PostgreSQL %.2f, wrk and this script %.2f, other %.2f (%s); machine %.2f of %d busy; "
                  "CPU per request: nodes %.2f ms, PostgreSQL %.2f ms" % (
                      endpoint, label, cpu["nodes_total"], " + ".join("%.2f" % value for value in cpu["nodes"]), cpu["postgres"], cpu["load"],
                      cpu["other"], others, cpu["machine"], cpu["cores"], cpu["nodes_total"] * 1000 / max(1, rate),
                      cpu["postgres"] * 1000 / max(1, rate)))
    for key, endpoint in (("authorize", "/authorize"), ("token", "/oauth/token")):
        for label, result in results.items():
            pg = result[key].get("postgres")
            if pg:
                run = result[key]
                print(tag + " postgres %s %s: %.0f events/s, %.0f net table rows/s, %d new connections; %d samples: lock held %.0f%%, "
                      "waiting for it %.2f; backends on average: %s; lock holder: %s" % (
                          endpoint, label, run["events"] / run["cpu"]["wall"], run["entries"] / run["cpu"]["wall"], run["sessions"],
                          pg["samples"], pg["held"] * 100, pg["waiters"], describe(pg["activity"], 5), describe(pg["holder"])))
    for key, endpoint in (("authorize", "/authorize"), ("token", "/oauth/token")):
        for label, result in results.items():
            writers = result[key].get("writers")
            if writers and writers["commits"] > 0:
                run = result[key]
                batches = writers["commits"]
                held_ms = writers["under_lock"] * 1000 / batches
                events_per_batch = run["events"] / batches
                print(tag + " lock %s %s: %.0f batches/s, %.1f requests and %.1f events a batch; a batch %.2f ms from asking for the lock "
                      "to its catch-up, then %.2f ms under it to its commit (its writer's CPU %.3f ms a batch): ceiling %.0f batches/s "
                      "x %.1f events = %.0f events/s (%.0f measured)" % (
                          endpoint, label, batches / run["cpu"]["wall"], writers["requests"] / batches, events_per_batch,
                          writers["until_caught_up"] * 1000 / batches, held_ms, writers["writer_cpu"] * 1000 / batches,
                          1000 / max(held_ms, 1e-6), events_per_batch,
                          1000 / max(held_ms, 1e-6) * events_per_batch, run["events"] / run["cpu"]["wall"]))
    for key, endpoint in (("authorize", "/authorize"), ("token", "/oauth/token")):
        for label, result in results.items():
            writers = result[key].get("writers")
            if writers:
                run = result[key]
                served = max(1, run["requests"])
                print(tag + " reads %s %s: %.2f read statements a request (%d statements answered %d reads awaited), "
                      "in %.2f round trips a request (%d); %d reads waited on a thread (%.3f a request)" % (
                          endpoint, label, writers["awaited_statements"] / served, writers["awaited_statements"],
                          writers["awaited_reads"], writers.get("awaited_round_trips", 0) / served, writers.get("awaited_round_trips", 0),
                          writers["waited_reads"], writers["waited_reads"] / served))
    print("")
    for key, endpoint in (("authorize", "/authorize"), ("token", "/oauth/token")):
        for label, result in results.items():
            if "postgres" in result[key]:
                name, evidence = bottleneck(result[key], args.cpu_quota)
                print(tag + " bottleneck: %s %s: %s — %s" % (endpoint, label, name, evidence))
    pg_labels = [label for label in results if label.startswith("PG ")]
    if pg_one and len(pg_labels) > 1:
        largest = pg_labels[-1]
        names = []
        for key in ("authorize", "token"):
            name = bottleneck(results[largest][key], args.cpu_quota)[0].split(" (")[0]
            if name not in names:
                names.append(name)
        print(tag + " bottleneck: overall: %s give %s the rate of PG 1 node; %s: %s" % (
            largest, " and ".join("%.2fx (%s)" % (results[largest][key]["rate"] / pg_one[key]["rate"], endpoint)
                                  for key, endpoint in (("authorize", "/authorize"), ("token", "/oauth/token"))),
            largest, " (/authorize), ".join(names) + (" (/oauth/token)" if len(names) > 1 else "")))
    warnings = []
    for label, result in results.items():
        run = result["token"]
        if run["non2xx"] or run["socket_errors"]:
            warnings.append("%s /oauth/token: %d non-2xx and %d socket errors in %d requests (%d codes issued): that row is not valid" % (
                label, run["non2xx"], run["socket_errors"], run["requests"], run["codes"]))
        elif any(done > codes for done, codes in zip(run["per_node_requests"], run["codes_per_node"])):
            warnings.append("%s /oauth/token: more exchanges than codes at a node: that row is not valid" % label)
        if result["authorize"]["non2xx"] or result["authorize"]["socket_errors"]:
            warnings.append("%s /authorize: %d non-2xx and %d socket errors: that row is not valid" % (
                label, result["authorize"]["non2xx"], result["authorize"]["socket_errors"]))
        for index, findings in enumerate(result["logs"]):
            if findings:
                print(tag + " log: %s node %d: %d lines at warning or above, first: %s" % (label, index, len(findings), findings[0][:300]))
        if result.get("postgres_log"):
            print(tag + " log: %s PostgreSQL: %d lines ERROR, FATAL, PANIC or WARNING, first: %s" % (
                label, len(result["postgres_log"]), result["postgres_log"][0][:300]))
    worst = max((result[key]["cpu"] for result in results.values() for key in ("authorize", "token")), key=lambda cpu: cpu["other"])
    if worst["other"] >= 0.25:
        warnings.append("other processes used up to %.2f cores (on average over a run: %s) while it was measured: every figure is "
                        "disturbed, rerun on a quiet machine" % (worst["other"], ", ".join("%s %.2f" % item for item in worst["other_names"][:3])))
    for warning in warnings:
        print("WARNING: %s" % warning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
