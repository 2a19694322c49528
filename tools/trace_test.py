#!/usr/bin/env python3
"""OpenTelemetry traces end to end (issue #18): `authledger serve` with the standard `OTEL_*` environment
exports its spans over OTLP/HTTP (protobuf, the default protocol) to a local receiver that decodes them
with the OpenTelemetry project's own protobuf definitions (the `opentelemetry-proto` package), and the
trace ids in the journal lead to those spans and back.

    python3 tools/trace_test.py --bin .build/debug [--keep]

1. off by default: a server started without `OTEL_*` exports nothing and its events carry no trace id;
2. spans (LMDB journal): a login-consent-code flow and its token exchange, traced: a server span per
   request, and under them the decision (`authorize.decide`), the signing (`events.sign`), the append
   (`journal.append`) and its commit (`journal.commit`), the tokens' signing (`tokens.sign`), each a
   child of a span of the same trace;
3. a `traceparent` is continued only from a trusted proxy (`--trusted-proxy`): a client's is ignored (its
   trace id never reaches the events), a proxy's puts the token request's spans and events in its trace;
4. journal to trace and back: every event the traced requests recorded carries the trace id of a request
   span the receiver got, and `authledger-replay timeline --trace ID` lists exactly the events that
   carry ID; `verify` and `rebuild --check` pass;
5. PostgreSQL: the same flow on a shared journal (a private PostgreSQL), with a `postgres.round_trip`
   span for the journal's round trips, under the commit; `timeline --store … --trace ID` answers; with
   exports a minute apart, stopping the server (SIGTERM) flushes its spans to the receiver.
Prints a line per check; exits 1 on any failure.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from authledger_e2e import Server, binaries, demo_redirect_uri, free_port, install_missing  # noqa: E402
from cluster_test import CheckFailed, Cluster, expect, new_session, run_checks  # noqa: E402

install_missing([("opentelemetry.proto", "opentelemetry-proto")])
from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402

EXPORT_WAIT_SECONDS = 20
JOURNAL_SPANS = ("authorize.decide", "events.sign", "journal.append", "journal.commit")


class Receiver:
    """An OTLP/HTTP trace receiver (`POST /v1/traces`, protobuf or JSON): keeps every span it is sent."""

    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.spans = []  # dicts: trace, span, parent, name, kind, attributes, links, service
        self.requests = []  # (path, content type)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *arguments):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                content_type = self.headers.get("Content-Type", "")
                request = trace_service_pb2.ExportTraceServiceRequest()
                try:
                    if content_type.startswith("application/x-protobuf"):
                        request.ParseFromString(body)
                    else:
                        json_format.Parse(body.decode(), request)
                except Exception as error:  # noqa: BLE001 - a malformed export is an answer of 400
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(str(error).encode())
                    return
                receiver.add(self.path, content_type, request)
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def add(self, path, content_type, request):
        spans = []
        for resource_spans in request.resource_spans:
            service = next((attribute.value.string_value for attribute in resource_spans.resource.attributes
                            if attribute.key == "service.name"), None)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append({
                        "trace": span.trace_id.hex(), "span": span.span_id.hex(), "parent": span.parent_span_id.hex(),
                        "name": span.name, "kind": span.kind, "service": service,
                        "attributes": {attribute.key: json_format.MessageToDict(attribute.value) for attribute in span.attributes},
                        "links": [link.trace_id.hex() for link in span.links],
                    })
        with self.lock:
            self.requests.append((path, content_type))
            self.spans.extend(spans)

    def all(self):
        with self.lock:
            return list(self.spans)

    def stop(self):
        self.httpd.shutdown()


def traced_environment(receiver, **overrides):
    environment = dict(os.environ)
    for name in list(environment):
        if name.startswith("OTEL_"):
            del environment[name]
    environment.update({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200",
                        "OTEL_SERVICE_NAME": "authledger-trace-test"}, **overrides)
    return environment


class TraceTest:
    def __init__(self, authledger, replay, work):
        self.authledger, self.replay, self.work = authledger, replay, work
        self.receiver = Receiver()
        self.cluster = Cluster(authledger, replay, work)  # for its client (flow, redeem) and its PostgreSQL
        self.servers = []

    def server(self, name, extra_args=(), traced=True, **environment):
        untraced = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
        server = Server(self.authledger, self.work / name, free_port(), log_path=self.work / (name + ".log"), extra_args=extra_args,
                        env=traced_environment(self.receiver, **environment) if traced else untraced)
        server.start_healthy(timeout=60)
        self.servers.append(server)
        self.cluster.nodes = {"A": server}
        self.cluster.redirect = demo_redirect_uri(server.base)
        return server

    def flow(self, server, traceparent=None):
        """A login-consent-code flow and its exchange: the token response."""
        session = new_session()
        response, code, verifier = self.cluster.flow(session, server)
        expect(code, "no code: %d %s" % (response.status_code, response.headers.get("Location", "")[:200]))
        self.last_code = code
        if traceparent:
            session.headers["traceparent"] = traceparent
        answer = self.cluster.redeem(server, code, verifier, session=session)
        expect(answer.status_code == 200, "the code exchange failed: %d %s" % (answer.status_code, answer.text[:200]))
        return answer

    def events(self, journal_args):
        """Every event of the journal (timeline --format jsonl): [(sequence, type, trace id or None)]."""
        result = subprocess.run([str(self.replay), "timeline", "--format", "jsonl"] + journal_args, capture_output=True, text=True,
                                timeout=120)
        expect(result.returncode == 0, "timeline failed (exit %d): %s" % (result.returncode, result.stderr[-300:]))
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return [(line["sequence"], line["type"], (line.get("payload") or {}).get("trace_id")) for line in lines]

    def timeline_trace(self, journal_args, trace):
        result = subprocess.run([str(self.replay), "timeline", "--format", "jsonl", "--trace", trace] + journal_args,
                                capture_output=True, text=True, timeout=120)
        expect(result.returncode == 0, "timeline --trace failed (exit %d): %s" % (result.returncode, result.stderr[-300:]))
        return [json.loads(line)["sequence"] for line in result.stdout.splitlines() if line.strip()]

    def wait_for_spans(self, predicate, what):
        deadline = time.monotonic() + EXPORT_WAIT_SECONDS
        while True:
            spans = self.receiver.all()
            if predicate(spans):
                return spans
            expect(time.monotonic() < deadline, "%s not received within %d s; got %d spans: %s" % (
                what, EXPORT_WAIT_SECONDS, len(spans), sorted({span["name"] for span in spans})))
            time.sleep(0.1)

    @staticmethod
    def check_tree(spans, wanted):
        """Every span has its parent in the receiver (or is a request's root); each of `wanted` is there, under
        a span of its own trace."""
        by_id = {(span["trace"], span["span"]): span for span in spans}
        names = {span["name"] for span in spans}
        missing = [name for name in wanted if name not in names]
        expect(not missing, "no %s span; got %s" % (", ".join(missing), sorted(names)))
        orphans = [span["name"] for span in spans if span["parent"] and (span["trace"], span["parent"]) not in by_id
                   and span["kind"] != 2]  # a server span may continue a client's trace (its parent is the client's)
        expect(not orphans, "spans whose parent was never exported: %s" % orphans)
        for name in wanted:
            for span in (span for span in spans if span["name"] == name):
                expect(span["parent"], "%s is a root span, not a child of the request's" % name)
        return by_id

    # -- the checks

    def check_off_by_default(self):
        server = self.server("untraced", traced=False)
        self.flow(server)
        server.stop()
        events = self.events(["--journal", str(self.work / "untraced")])
        carrying = [sequence for sequence, _, trace in events if trace]
        expect(not carrying, "events of an untraced server carry trace ids: %s" % carrying[:5])
        expect(not self.receiver.all(), "an untraced server exported %d spans" % len(self.receiver.all()))
        return "%d events, none with a trace id; nothing exported" % len(events)

    def check_spans(self):
        self.lmdb = self.server("traced")
        self.flow(self.lmdb)
        spans = self.wait_for_spans(lambda spans: {"tokens.sign", "journal.commit"} <= {span["name"] for span in spans}, "the flow's spans")
        time.sleep(1)  # the rest of the batch
        spans = self.receiver.all()
        self.check_tree(spans, JOURNAL_SPANS + ("tokens.sign",))
        roots = [span for span in spans if span["kind"] == 2]  # SPAN_KIND_SERVER
        routes = sorted({span["name"] for span in roots})
        for route in ("/authorize", "/login", "/oauth/token"):
            expect(route in routes, "no server span for %s: %s" % (route, routes))
        expect(all(span["service"] == "authledger-trace-test" for span in spans), "OTEL_SERVICE_NAME not applied")
        decide = next(span for span in spans if span["name"] == "authorize.decide")
        expect("authledger.decision.rule" in decide["attributes"], "authorize.decide has no rule: %s" % decide["attributes"])
        # Privacy: no client address, user agent, query value or login name in any span.
        leaked = [(span["name"], name, value) for span in spans for name, value in span["attributes"].items()
                  if any(secret in json.dumps(value) for secret in ("127.0.0.1", "python-requests", "demo@example.com", self.last_code))]
        expect(not leaked, "spans record what they must not: %s" % leaked[:3])
        authorize = next(span for span in spans if span["name"] == "/authorize")
        expect("client_id" in json.dumps(authorize["attributes"].get("authledger.query.parameters")), "no query parameter names on /authorize: %s" % authorize["attributes"])
        token_trace = next(span["trace"] for span in spans if span["name"] == "tokens.sign")
        in_token_trace = {span["name"] for span in spans if span["trace"] == token_trace}
        expect({"/oauth/token", "tokens.sign", "journal.append", "journal.commit"} <= in_token_trace,
               "the token request's trace lacks spans: %s" % sorted(in_token_trace))
        return "%d spans in %d traces; server spans %s" % (len(spans), len({span["trace"] for span in spans}), ", ".join(routes))

    def check_traceparent(self):
        # From a client: ignored (its trace id would be signed into the events), a trace of the server's own.
        ignored = os.urandom(16).hex()
        self.flow(self.lmdb, traceparent="00-%s-%s-01" % (ignored, os.urandom(8).hex()))
        trace = os.urandom(16).hex()
        parent = os.urandom(8).hex()
        # From a trusted proxy (--trusted-proxy, as for X-Forwarded-For): continued.
        proxied = self.server("proxied", extra_args=["--trusted-proxy", "127.0.0.1"])
        self.flow(proxied, traceparent="00-%s-%s-01" % (trace, parent))
        # The request's own span ends after its children, and may come in a later export than theirs: wait
        # for both.
        spans = self.wait_for_spans(
            lambda spans: any(span["trace"] == trace and span["name"] == "tokens.sign" for span in spans)
            and any(span["trace"] == trace and span["kind"] == 2 for span in spans),
            "the proxy's trace")
        root = [span for span in spans if span["trace"] == trace and span["kind"] == 2]
        expect(len(root) == 1 and root[0]["parent"] == parent and root[0]["name"] == "/oauth/token",
               "the token request's span is not a child of the proxy's: %s" % root)
        expect(not [span for span in spans if span["trace"] == ignored], "a client's traceparent was continued")
        traced = [trace_id for _, _, trace_id in self.events(["--journal", str(self.work / "traced")])]
        expect(ignored not in traced, "a client's trace id was signed into the events")
        self.client_trace = trace
        proxied.stop()
        return "a client's trace id ignored; a trusted proxy's trace %s continued from its span %s" % (trace, parent)

    def check_journal_and_back(self, journal_args, label):
        spans = self.receiver.all()
        request_traces = {span["trace"] for span in spans if span["kind"] == 2}
        events = self.events(journal_args)
        traced = [(sequence, kind, trace) for sequence, kind, trace in events if trace]
        expect(traced, "no event carries a trace id")
        unknown = [(sequence, trace) for sequence, _, trace in traced if trace not in request_traces]
        expect(not unknown, "events whose trace the receiver never got a request span of: %s" % unknown[:5])
        by_trace = {}
        for sequence, _, trace in traced:
            by_trace.setdefault(trace, []).append(sequence)
        for trace, sequences in by_trace.items():
            listed = self.timeline_trace(journal_args, trace)
            expect(listed == sequences, "timeline --trace %s lists %s, the events carrying it are %s" % (trace, listed, sequences))
        issued = [trace for _, kind, trace in events if kind == "auth.token.issued"]
        expect(issued and all(issued), "a token issuance without a trace id: %s" % issued)
        for arguments in (["verify"], ["rebuild", "--check"]):
            result = subprocess.run([str(self.replay)] + arguments + journal_args, capture_output=True, text=True, timeout=300)
            expect(result.returncode == 0, "%s: exit %d: %s" % (" ".join(arguments), result.returncode, (result.stdout + result.stderr)[-300:]))
        return "%s: %d of %d events carry one of %d trace ids; timeline --trace lists each trace's events; verify, rebuild --check pass" % (
            label, len(traced), len(events), len(by_trace))

    def check_lmdb_journal(self):
        expect(any(trace == self.client_trace for _, _, trace in self.events(["--journal", str(self.work / "proxied")])),
               "no event carries the proxy's trace id")
        proxied = self.check_journal_and_back(["--journal", str(self.work / "proxied")], "behind a proxy")
        return self.check_journal_and_back(["--journal", str(self.work / "traced")], "LMDB") + "; " + proxied

    def check_postgres(self):
        self.lmdb.stop()
        store = self.cluster.postgres("start")
        before = {span["span"] for span in self.receiver.all()}
        # Exports a minute apart: the spans reach the receiver only because stopping the server flushes them.
        server = self.server("shared", extra_args=["--store", store, "--key", str(self.work / "shared.key")],
                             OTEL_BSP_SCHEDULE_DELAY="60000")
        self.flow(server)
        expect(not [span for span in self.receiver.all() if span["span"] not in before], "exported before the minute was up")
        expect(server.stop(), "the server did not stop on SIGTERM within 20 s")
        spans = [span for span in self.receiver.all() if span["span"] not in before]
        by_id = self.check_tree(spans, JOURNAL_SPANS + ("tokens.sign", "postgres.round_trip"))
        under_commit = [span for span in spans if span["name"] == "postgres.round_trip"
                        and by_id.get((span["trace"], span["parent"]), {}).get("name") == "journal.commit"]
        expect(under_commit, "no postgres.round_trip span under a journal.commit")
        expect(all(span["attributes"].get("db.system.name") for span in under_commit), "round trips without db.system.name")
        elsewhere = sorted({by_id.get((span["trace"], span["parent"]), {}).get("name") for span in spans
                            if span["name"] == "postgres.round_trip" and span not in under_commit})
        expect(elsewhere, "no postgres.round_trip outside a commit (the requests' reads, on a thread of their own)")
        detail = self.check_journal_and_back(["--store", store, "--journal", str(self.work / "shared")], "PostgreSQL")
        return "%d spans flushed on SIGTERM; %d round trips traced under commits, others under %s; %s" % (
            len(spans), len(under_commit), ", ".join(str(name) for name in elsewhere), detail)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    authledger, replay = binaries(args.bin)
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="authledger-traces-"))
    os.chmod(work, 0o755)  # the private PostgreSQL runs as its own user
    test = TraceTest(authledger, replay, work)
    results = []
    try:
        results = run_checks([("1 off by default", test.check_off_by_default), ("2 spans", test.check_spans),
                              ("3 traceparent: a client's ignored, a proxy's continued", test.check_traceparent), ("4 journal to trace and back", test.check_lmdb_journal),
                              ("5 PostgreSQL", test.check_postgres)], test.cluster, stop_at_failure=True)
    finally:
        for server in test.servers:
            server.kill()
        test.receiver.stop()
        try:
            test.cluster.postgres("stop")
        except CheckFailed:
            pass
    failed = [name for name, ok in results if not ok]
    print("traces: %d spans received in %d exports; %.0f s" % (len(test.receiver.all()), len(test.receiver.requests), time.monotonic() - began))
    if failed or args.keep:
        print("traces: scratch directory kept: %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("traces: %d passed, %d failed%s" % (len(results) - len(failed), len(failed), (": " + ", ".join(failed)) if failed else ""))
    return 1 if failed or len(results) < 5 else 0


if __name__ == "__main__":
    sys.exit(main())
