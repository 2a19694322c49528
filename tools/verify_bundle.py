#!/usr/bin/env python3
"""Independent verifier for AuthLedger compliance bundles (authledger-replay export).

Written from docs/journal-format.md alone, with the `cryptography` package for Ed25519 and hashlib
for SHA-256; it shares no code with the Swift implementation.

    tools/verify_bundle.py BUNDLE_DIR [--pin KEYS_FILE]

Checks: the checkpoint's signed-note signature by a key of the bundle (or of --pin, the keys an
auditor obtained independently); for every event, the strict record encoding, its Ed25519 signature
by the key its key id names, that its sequence matches, and its RFC 9162 inclusion proof against the
checkpoint's root. Records left out for personal-data reasons are checked by leaf hash (inclusion only).

Keys are trusted only within their tenure (docs/journal-format.md, "Key tenures"): a key line may end in
"#first-#last" (or "#first-" for a key still signing), and then an event must lie in that range and a
checkpoint of size N must satisfy first <= N + 1 and N <= last. A retired key that leaks can therefore
sign nothing after its retirement that this verifier accepts. A key line without a tenure (pin files of
earlier releases) is trusted for any sequence number.
Prints one line per problem and a summary; exits 0 when everything verifies, 1 otherwise, 2 on unusable input.
"""
import base64
import csv
import hashlib
import io
import json
import os
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PREFIX = b"AuthLedger/event/v1\n"


class Problem(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).digest()


def parse_tenure(text):
    """'#first-#last' or '#first-' -> (first, last or None)."""
    first, sep, last = text.partition("-")
    if not sep or not first.startswith("#") or (last and not last.startswith("#")):
        raise Problem("not a key tenure (#first-#last or #first-): %s" % text)
    first = int(first[1:])
    last = int(last[1:]) if last else None
    if first < 1 or (last is not None and last + 1 < first):
        raise Problem("not a key tenure: %s" % text)
    return first, last


def parse_verifier_keys(text):
    """Pinned keys: signed-note verifier keys, name+hash+base64(0x01 || key), each optionally followed by a
    tenure -> list of (name, keyhash, key bytes, tenure or None)."""
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) > 2:
            raise Problem("a pinned key is a verifier key and an optional tenure: %s" % line)
        tenure = parse_tenure(fields[1]) if len(fields) == 2 else None
        line = fields[0]
        name, keyhash, encoded = line.split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        if len(raw) != 33 or raw[0] != 1:
            raise Problem("not an Ed25519 verifier key: %s" % line)
        key = raw[1:]
        expected = sha256(name.encode() + b"\n" + b"\x01" + key)[:4].hex()
        if expected != keyhash:
            raise Problem("verifier key hash does not match: %s" % line)
        keys.append((name, bytes.fromhex(keyhash), key, tenure))
    return keys


def event_allowed(tenure, sequence):
    """Whether a key of this tenure may sign event `sequence` (None: no tenure pinned, any)."""
    if tenure is None:
        return True
    first, last = tenure
    return sequence >= first and (last is None or sequence <= last)


def checkpoint_allowed(tenure, size):
    """Whether a key of this tenure may sign a checkpoint of `size` events: it signed event `size`, or
    signs event `size` + 1 (a batch that rotates to a key is sealed by the new key)."""
    if tenure is None:
        return True
    first, last = tenure
    return first <= size + 1 and (last is None or size <= last)


def journal_key_id(key):
    return sha256(b"AuthLedger/key/v1\n" + key)[:8]


def verify_checkpoint(text, keys):
    body, _, signatures = text.rpartition("\n\n")
    body += "\n"
    lines = body.split("\n")
    if len(lines) != 5 or not lines[3].startswith("time "):
        raise Problem("checkpoint body is not origin, size, root, time")
    if not lines[1].isascii() or not lines[1].isdigit():
        raise Problem("checkpoint size is not a decimal number")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    outside = False
    for line in signatures.strip("\n").split("\n"):
        if not line.startswith("\u2014 "):
            raise Problem("malformed signature line in checkpoint")
        name, encoded = line[2:].split(" ", 1)
        raw = base64.b64decode(encoded, validate=True)
        for key_name, keyhash, key, tenure in keys:
            if key_name == name == origin and keyhash == raw[:4]:
                try:
                    Ed25519PublicKey.from_public_bytes(key).verify(raw[4:], body.encode())
                except InvalidSignature:
                    continue
                if checkpoint_allowed(tenure, size):
                    return origin, size, root
                outside = True
    if outside:
        raise Problem("the checkpoint of %d events is signed by a key outside its tenure (retired or not yet introduced)" % size)
    raise Problem("the checkpoint has no valid signature by the given keys")


def decode_record(record):
    """Strict decoding per docs/journal-format.md section 1."""
    if not record.startswith(PREFIX):
        raise Problem("record does not start with the AuthLedger/event/v1 prefix")
    offset = len(PREFIX)

    def take(count):
        nonlocal offset
        if offset + count > len(record):
            raise Problem("record is truncated")
        chunk = record[offset:offset + count]
        offset += count
        return chunk

    sequence, = struct.unpack(">Q", take(8))
    take(8)  # time
    take(32)  # previous hash
    content_start = offset
    take(16)  # journal id
    type_length = take(1)[0]
    take(type_length)
    take(2)  # schema version
    key_id = take(8)
    payload_length, = struct.unpack(">I", take(4))
    take(payload_length)
    content = record[content_start:offset]
    signature = take(64)
    if offset != len(record):
        raise Problem("record has bytes after its signature")
    return sequence, key_id, PREFIX + content, signature


def verify_inclusion(leaf_hash, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index < 0 or index >= size:
        return False
    fn, sn, result = index, size - 1, leaf_hash
    for node in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = sha256(b"\x01" + node + result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = sha256(b"\x01" + result + node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root


EVENT_FORMATS = {"jsonl", "csv", "ocsf"}
MAX_PROOF = 64  # a tree of 2^64 leaves has no longer path


def text_of(data, what):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problem("%s is not UTF-8: %s" % (what, error))


def read_manifest(data):
    """The manifest's members this verifier uses, each checked for its type."""
    try:
        manifest = json.loads(text_of(data, "manifest.json"))
    except (ValueError, RecursionError) as error:
        raise Problem("manifest.json is not JSON: %s" % error)
    if not isinstance(manifest, dict):
        raise Problem("manifest.json is not an object")
    event_file, event_format = manifest.get("event_file"), manifest.get("event_format")
    if not isinstance(event_file, str) or not event_file or os.path.basename(event_file) != event_file or event_file in (".", ".."):
        raise Problem("manifest.json names no event file in the bundle: %r" % (event_file,))
    if not isinstance(event_format, str) or event_format not in EVENT_FORMATS:
        raise Problem("manifest.json has event_format %r; expected one of %s" % (event_format, ", ".join(sorted(EVENT_FORMATS))))
    return manifest


def member(entry, name, kind, optional=False):
    value = entry.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise Problem("%s is not %s" % (name, {str: "a string", int: "an integer", list: "a list", dict: "an object"}[kind]))
    return value


def load_events(text, event_format):
    """Yields each event entry as a dict of sequence, record (or None), leaf_hash (or None), proof (list);
    an entry that cannot be read is yielded as a Problem."""
    if event_format == "csv":
        try:
            for row in csv.DictReader(io.StringIO(text, newline="")):
                try:
                    sequence = int(row.get("sequence") or "")
                except ValueError:
                    yield Problem("a CSV row has no sequence number: %r" % (row.get("sequence"),))
                    continue
                proof = row.get("proof") or ""
                yield {"sequence": sequence, "record": row.get("record") or None, "leaf_hash": row.get("leaf_hash") or None,
                       "proof": proof.split(" ") if proof else []}
        except csv.Error as error:
            yield Problem("the CSV file is malformed: %s" % error)
        return
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if event_format == "ocsf":
                entry = member(member(entry, "unmapped", dict), "authledger", dict) if isinstance(entry, dict) else None
            if not isinstance(entry, dict):
                raise Problem("not an object")
            yield {"sequence": member(entry, "sequence", int), "record": member(entry, "record", str, optional=True),
                   "leaf_hash": member(entry, "leaf_hash", str, optional=True), "proof": member(entry, "proof", list)}
        except (ValueError, RecursionError, Problem) as error:
            yield Problem("line %d: %s" % (number, error))


def b64(text, what):
    if not isinstance(text, str):
        raise Problem("%s is not a base64 string" % what)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as error:
        raise Problem("%s is not base64: %s" % (what, error))


def verify(manifest_data, keys_data, checkpoint_data, read_event_file, report=print):
    """Verifies a bundle given its files' bytes (`read_event_file(name)` gives the event file the manifest
    names): prints each problem and a summary through `report`; returns 0 (verified), 1 (a problem) or
    2 (unusable input). Never raises for anything in the bundle."""
    try:
        manifest = read_manifest(manifest_data)
        keys = parse_verifier_keys(text_of(keys_data, "the keys"))
        checkpoint_text = text_of(checkpoint_data, "checkpoint.txt")
        event_text = text_of(read_event_file(manifest["event_file"]), "the event file")
    except (OSError, ValueError, Problem) as error:
        report("unusable bundle: %s" % error)
        return 2

    problems = []
    try:
        origin, size, root = verify_checkpoint(checkpoint_text, keys)
    except (Problem, ValueError) as error:
        report("checkpoint: %s" % error)
        return 1
    by_id = {journal_key_id(key): (key, tenure) for _, _, key, tenure in keys}
    count = signed = 0
    for entry in load_events(event_text, manifest["event_format"]):
        count += 1
        if isinstance(entry, Problem):
            problems.append("event %d: %s" % (count, entry))
            continue
        sequence = entry["sequence"]
        try:
            if entry["record"]:
                record = b64(entry["record"], "record")
                recorded_sequence, key_id, signed_bytes, signature = decode_record(record)
                if recorded_sequence != sequence:
                    raise Problem("the record says #%d" % recorded_sequence)
                key, tenure = by_id.get(key_id, (None, None))
                if key is None:
                    raise Problem("signed by unknown key %s" % key_id.hex())
                if not event_allowed(tenure, sequence):
                    raise Problem("signed by key %s outside its tenure #%d-%s" % (
                        key_id.hex(), tenure[0], "" if tenure[1] is None else "#%d" % tenure[1]))
                try:
                    Ed25519PublicKey.from_public_bytes(key).verify(signature, signed_bytes)
                except InvalidSignature:
                    raise Problem("signature does not verify")
                signed += 1
                leaf = sha256(b"\x00" + record)
                if entry["leaf_hash"] and b64(entry["leaf_hash"], "leaf_hash") != leaf:
                    raise Problem("leaf hash does not match the record")
            else:
                leaf = b64(entry["leaf_hash"], "leaf_hash")
            if len(entry["proof"]) > MAX_PROOF:
                raise Problem("inclusion proof of %d nodes" % len(entry["proof"]))
            proof = [b64(node, "a proof node") for node in entry["proof"]]
            if not verify_inclusion(leaf, sequence - 1, size, proof, root):
                raise Problem("inclusion proof does not lead to the checkpoint root")
        except (Problem, ValueError) as error:
            problems.append("event #%d: %s" % (sequence, error))
    if count != manifest.get("events"):
        problems.append("the manifest lists %s events, the bundle holds %d" % (manifest.get("events"), count))
    for problem in problems:
        report(problem)
    report("%s: %d events, %d signatures checked, checkpoint of %d events for %s%s" % (
        "FAILED" if problems else "verified", count, signed, size, origin,
        "" if signed == count else " (records omitted: inclusion checked by leaf hash only)"))
    return 1 if problems else 0


def read_file(path):
    with open(path, "rb") as handle:
        return handle.read()


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    bundle = argv[1]
    pin = argv[argv.index("--pin") + 1] if "--pin" in argv else None
    try:
        files = [read_file(os.path.join(bundle, "manifest.json")), read_file(pin or os.path.join(bundle, "keys.txt")),
                 read_file(os.path.join(bundle, "checkpoint.txt"))]
    except OSError as error:
        print("unusable bundle: %s" % error)
        return 2
    return verify(*files, read_event_file=lambda name: read_file(os.path.join(bundle, name)))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
