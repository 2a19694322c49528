#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Fuzz/Corpus/<target>/) from the committed fixture journal,
the fixture tenant and hand-made JOSE objects. Run once; the seeds are committed (small). The journal's
records are read with mdb_dump (lmdb-utils). The compliance-bundle seeds (target `bundle`, the Python
verifier tools/verify_bundle.py) are bundles exported from the fixture journal by authledger-replay.

    python3 Fuzz/make_seeds.py [--replay .build/debug/authledger-replay]
    python3 Fuzz/make_seeds.py --only projection     (the projection target's seeds alone)
    python3 Fuzz/make_seeds.py --only records        (event-record and journal: JSON and compact records)
    python3 Fuzz/make_seeds.py --only bundle [--replay PATH]

The journal's seeds come from three fixtures: journals/fixture-incident-v4, the last written with JSON payloads
and projection values, journals/fixture-incident-v5, whose payloads are compact (journal format §17) with
objects in the plain form, and journals/fixture-incident, whose objects take the named form (§16).

The projection seeds are the fixture journal's projection values (JSON, as the release that wrote it stored
them) and the same values as compact values, encoded here by `compact` below, an implementation of
docs/journal-format.md §16 independent of the Swift one: FuzzCorpusTests checks that Swift decodes each
and encodes it back to the same bytes.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "Corpus")
JOURNAL = os.path.join(ROOT, "journals", "fixture-incident")
# The last fixture whose payloads and projection values are JSON (the current one's are compact).
JSON_JOURNAL = os.path.join(ROOT, "journals", "fixture-incident-v4")
COMPACT_JOURNAL = os.path.join(ROOT, "journals", "fixture-incident-v5")
# The last that stored records in full (docs/journal-format.md §6: shortened since).
NAMED_JOURNAL = os.path.join(ROOT, "journals", "fixture-incident-v6")


def dump(table, journal=JOURNAL):
    """The (key, value) byte pairs of an LMDB sub-database, in key order."""
    lines = subprocess.run(["mdb_dump", "-s", table, journal], capture_output=True, text=True, check=True).stdout.splitlines()
    body = [line.strip() for line in lines[lines.index("HEADER=END") + 1:] if line.strip() != "DATA=END"]
    return [(bytes.fromhex(body[i]), bytes.fromhex(body[i + 1])) for i in range(0, len(body) - 1, 2)]


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())


def chunk(kind, body):
    body = body[:0xFFFF]
    return bytes([kind, len(body) >> 8, len(body) & 0xFF]) + body


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# The compact encoding (docs/journal-format.md §16), as the auditor's verifier implements it: independent of
# the Swift implementation, which FuzzCorpusTests holds to these bytes.
sys.path.insert(0, os.path.join(ROOT, "tools"))
from verify_bundle import encode_compact as compact  # noqa: E402


def projections():
    """projection: a value of each of the fixture's projection tables, as stored (JSON) and compact."""
    for table in ("config", "sessions", "codes", "interactions", "tokens", "login_failures", "token_keys", "session_clients"):
        entries = dump("p.auth." + table, JSON_JOURNAL)
        if entries:
            value = entries[0][1]
            write("projection", table + ".json", value)
            write("projection", table, compact(json.loads(value)))


def records():
    """event-record and journal: records of each kind (genesis, configuration, decisions, codes, tokens),
    JSON ones from the last fixture that wrote JSON payloads, compact ones (journal format §17) from the last
    that wrote objects in the plain form, named ones (§16, the named form) from the last that stored records
    in full, and shortened ones (§6) from the current one; each journal whole with its checkpoints (it
    verifies), and a prefix without them."""
    for prefix, journal in (("record", JSON_JOURNAL), ("compact", COMPACT_JOURNAL), ("named", NAMED_JOURNAL), ("stored", JOURNAL)):
        events = [value for _, value in dump("events", journal)]
        for index in (0, 1, 4, 8, 20, 21, 40, 74, 75, 76):
            if index < len(events):
                write("event-record", "%s-%02d" % (prefix, index + 1), events[index])
    for suffix, journal in (("", JSON_JOURNAL), ("-compact", COMPACT_JOURNAL), ("-named", NAMED_JOURNAL), ("-stored", JOURNAL)):
        events = [value for _, value in dump("events", journal)]
        # Checkpoints as stored: the note's text (kind 1), or shortened (kind 3: the tree size, then the bytes).
        checkpoints = [chunk(3, key + value) if value[:1] == b"\x01" else chunk(1, value) for key, value in dump("checkpoints", journal)]
        write("journal", "whole" + suffix, b"".join(checkpoints) + b"".join(chunk(0, r) for r in events))
        write("journal", "prefix" + suffix, b"".join(chunk(0, r) for r in events[:12]))


def main():
    if "--only" in sys.argv:
        only = sys.argv[sys.argv.index("--only") + 1]
        if only == "bundle":
            bundles(sys.argv[sys.argv.index("--replay") + 1] if "--replay" in sys.argv else ".build/debug/authledger-replay")
        else:
            {"projection": projections, "records": records}[only]()
        return 0
    projections()
    records()
    checkpoints = [value for _, value in dump("checkpoints", JSON_JOURNAL)]
    # checkpoint: notes as stored, a pin file.
    for index, text in enumerate(checkpoints[:3]):
        write("checkpoint", "note-%d" % index, text)
    with open(os.path.join(ROOT, "journals", "fixture-incident.pub"), "rb") as handle:
        write("checkpoint", "pins", handle.read())
    # parameters: an authorization request, a token request, odd encodings.
    write("parameters", "authorize",
          "response_type=code&client_id=web-app&redirect_uri=https%3A%2F%2Fclient.example%2Fcallback&scope=openid%20profile"
          "&state=st-123&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
          "&prompt=login+consent&max_age=300&login_hint=alice%40example.com&claims=%7B%22id_token%22%3A%7B%7D%7D")
    write("parameters", "token", "grant_type=authorization_code&code=abc&redirect_uri=https://client.example/callback&code_verifier=x")
    write("parameters", "odd", "a=%zz&&=&b=%E2%82&c=1;d=2&a=repeated&%00=%ff+%2B")
    # tenant: the fixture's, as YAML and as JSON.
    with open(os.path.join(ROOT, "tools", "fixture", "incident-tenant.yaml"), "rb") as handle:
        write("tenant", "incident.yaml", handle.read())
    write("tenant", "small.json", json.dumps({"tenant": {"issuer": "https://tenant.example/", "default_audience": "https://api"},
                                               "apis": [{"identifier": "https://api", "scopes": ["read"]}],
                                               "clients": [{"client_id": "c", "redirect_uris": ["https://c/cb"]}]}))
    # jose: a JWK Set line, then a signed client assertion / DPoP proof (ES256), and one with a broken signature.
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big")), "kid": "k1"}

    def sign(header, claims):
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return signing_input.decode() + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    now = 1_800_000_000
    assertion = sign({"alg": "ES256", "kid": "k1"},
                     {"iss": "client", "sub": "client", "aud": "https://tenant.example/oauth/token", "exp": now + 60, "iat": now, "jti": "j1"})
    proof = sign({"alg": "ES256", "typ": "dpop+jwt", "jwk": {k: v for k, v in jwk.items() if k != "kid"}},
                 {"jti": "p1", "htm": "POST", "htu": "https://tenant.example/oauth/token", "iat": now})
    jwks = json.dumps({"keys": [jwk]})
    write("jose", "assertion", jwks + "\n" + assertion)
    write("jose", "dpop", jwks + "\n" + proof)
    write("jose", "broken", jwks + "\n" + assertion[:-4] + "AAAA")
    if "--replay" in sys.argv:
        bundles(sys.argv[sys.argv.index("--replay") + 1])
    return 0


# The bundle target's input: manifest, keys, checkpoint and event file, joined by this separator
# (Fuzz/bundle_fuzz.py splits them again).
BUNDLE_SEPARATOR = b"\0--\0"


def bundles(replay):
    """The first events of the fixture journal exported in each format (and with records omitted); the
    events of a login, a decision and a code of the current fixture (compact payloads, the named form), of
    the last one with objects in the plain form, and of the last one with JSON payloads."""
    for name, journal, span, arguments in (
            ("jsonl", JSON_JOURNAL, ["#1", "#3"], ["--format", "jsonl"]), ("csv", JSON_JOURNAL, ["#1", "#3"], ["--format", "csv"]),
            ("ocsf", JSON_JOURNAL, ["#1", "#3"], ["--format", "ocsf"]),
            ("omitted", JSON_JOURNAL, ["#1", "#3"], ["--format", "jsonl", "--personal-data", "omit"]),
            ("flow-json", JSON_JOURNAL, ["#12", "#20"], ["--format", "jsonl"]),
            ("flow-compact", COMPACT_JOURNAL, ["#12", "#20"], ["--format", "jsonl"]),
            ("flow-compact-csv", COMPACT_JOURNAL, ["#12", "#20"], ["--format", "csv"]),
            ("flow-named", JOURNAL, ["#12", "#20"], ["--format", "jsonl"]),
            ("flow-named-csv", JOURNAL, ["#12", "#20"], ["--format", "csv"])):
        with tempfile.TemporaryDirectory() as directory:
            out = os.path.join(directory, "bundle")
            with tempfile.TemporaryDirectory() as copy:
                # A copy: opening a journal writes its lock file.
                subprocess.run(["cp", "-r", journal, os.path.join(copy, "journal")], check=True)
                subprocess.run([replay, "export", "--journal", os.path.join(copy, "journal"), "--from", span[0], "--to", span[1],
                                "--out", out] + arguments, check=True, capture_output=True)
            with open(os.path.join(out, "manifest.json"), "rb") as handle:
                manifest = handle.read()
            event_file = json.loads(manifest)["event_file"]
            parts = [manifest]
            for file in ("keys.txt", "checkpoint.txt", event_file):
                with open(os.path.join(out, file), "rb") as handle:
                    parts.append(handle.read())
            write("bundle", name, BUNDLE_SEPARATOR.join(parts))


if __name__ == "__main__":
    sys.exit(main())
