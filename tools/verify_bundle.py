#!/usr/bin/env python3
"""Independent verifier for AuthLedger compliance bundles (authledger-replay export).

Written from docs/journal-format.md alone, with the `cryptography` package for Ed25519 and hashlib
for SHA-256; it shares no code with the Swift implementation.

    tools/verify_bundle.py BUNDLE_DIR [--pin KEYS_FILE]

Checks: the checkpoint's signed-note signature by a key of the bundle (or of --pin, the keys an
auditor obtained independently); for every event, the strict record encoding, its Ed25519 signature
by the key its key id names, that its sequence matches, and its RFC 9162 inclusion proof against the
checkpoint's root. Records left out for personal-data reasons are checked by leaf hash (inclusion only).
An event's payload is decoded from its record — JSON text, or the compact encoding (docs/journal-format.md
sections 16 and 17, objects in either form) when its schema version has the top bit 0x8000, decoded strictly — and must be the
value the bundle shows beside it (`payload`), so what an auditor reads is what was signed.

Keys are trusted only within their tenure (docs/journal-format.md, "Key tenures"): a key line may end in
"#first-#last" (or "#first-" for a key still signing), and then an event must lie in that range and a
checkpoint of size N must satisfy first <= N + 1 and N <= last. A retired key that leaks can therefore
sign nothing after its retirement that this verifier accepts. A key line without a tenure (pin files of
earlier releases) is trusted for any sequence number.
Prints one line per problem and a summary; exits 0 when everything verifies, 1 otherwise, 2 on unusable input.
"""
import base64
import csv
import datetime
import hashlib
import io
import json
import os
import re
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


COMPACT_FLAG = 0x8000
MAX_COMPACT_DEPTH = 64
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
# The member-name table of the compact encoding's named form (docs/journal-format.md section 16): in an
# object tagged 0x0D, a name in this list is written as its position, which never changes.
MEMBER_NAMES = [
    "client_id", "redirect_uri", "user_id", "expires_at", "auth_time", "scopes", "redirect_uri_given", "state",
    "scope", "response_type", "parameters", "values", "repeated", "configuration_version", "decision_offset",
    "request_offset", "client_ip", "client_ip_key", "code_hash", "connection", "session_hash", "session",
    "redirectURI", "progress", "decision", "consents", "issueCode", "outcome", "delivery", "policy", "input",
    "interaction", "grant", "rule", "mode", "now", "_0", "sealed", "subject", "ct", "key", "nonce", "user_agent",
    "client_network", "access_token_id", "id_token_id", "grant_type", "refresh_family", "token_id", "token_ids",
    "audience", "binding_hash", "login", "pending", "username", "record", "reason", "at", "trace_id",
    "code_challenge", "code_challenge_method", "response_mode", "prompt", "login_hint", "status", "issued_sequence",
    "userinfo_claims", "organization_id", "organization", "max_age", "acr_values", "ui_locales", "id_token_hint",
    "resource", "request_uri", "request_uri_hash", "dpop_jkt", "dpop_proof_id", "token_hash", "refresh_token_id",
    "error", "code", "description", "family", "revoked_token_ids", "revoked_keys", "consent", "authenticated_at",
    "decided_at", "email", "email_verified", "name", "password_hash", "secret_hash", "app_type", "first_party",
    "grant_types", "redirect_uris", "connections", "token_endpoint_auth_method", "organization_usage", "identifier",
    "signing_alg", "allow_offline_access", "skip_consent_for_first_party", "token_ttl_seconds", "issuer",
    "allow_plain_pkce", "code_ttl_seconds", "session_ttl_seconds", "resource_parameter_profile", "strategy", "keys",
    "kid", "kty", "alg", "use", "crv", "table", "from_key", "through_key", "removed", "before_sequence", "time",
    "version", "claims", "sub", "aud", "exp", "token", "hint", "value", "kind", "members", "ticket", "invitation",
    "presented_hash", "parent_hash", "notified_clients", "logout_token_id", "post_logout_redirect_uri",
    "backchannel_logout_uri", "allowed_logout_urls", "token_client_id", "assertion", "used", "request",
    "pushed_request", "refusal", "settings", "retention", "personal_data_days", "subjects_forgotten",
    "keys_destroyed", "active_key_ids", "retired_key_ids", "phone_number_verified", "profile", "request_sequence",
    "decision_sequence",
]
MEMBER_POSITIONS = {name.encode(): position for position, name in enumerate(MEMBER_NAMES)}


def varint(number):
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def render_time(micros):
    """The text of a compact time (section 16): six fractional digits and Z, years 1 to 9999."""
    try:
        moment = EPOCH + datetime.timedelta(microseconds=micros)
    except OverflowError:
        raise Problem("a compact time outside the years 1-9999")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ").rjust(27, "0")


PSEUDONYM_PREFIX = "hmac-sha256:"


def string_form(text, pseudonyms=False):
    """The tag and bytes a string is stored as (section 16): the first form that renders back exactly; with
    `pseudonyms` (a value whose top is an object of the named form), a keyed pseudonym first."""
    if pseudonyms and len(text) == 76 and text.startswith(PSEUDONYM_PREFIX) and re.fullmatch(r"[0-9a-f]{64}", text[12:]):
        return 0x0E, bytes.fromhex(text[12:])
    if len(text) == 27 and text.endswith("Z"):
        try:
            moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
            micros = (moment - EPOCH) // datetime.timedelta(microseconds=1)
            if render_time(micros) == text:
                return 0x0A, varint(((micros << 1) ^ (micros >> 63)) & 0xFFFFFFFFFFFFFFFF)
        except (ValueError, Problem):
            pass
    if len(text) >= 16:
        if len(text) % 2 == 0 and re.fullmatch(r"[0-9a-f]+", text):
            return 0x07, bytes.fromhex(text)
        for tag, alphabet, pad in ((0x08, r"[A-Za-z0-9+/]+={0,2}", True), (0x09, r"[A-Za-z0-9_-]+", False)):
            if re.fullmatch(alphabet, text):
                try:
                    raw = (base64.b64decode if pad else base64.urlsafe_b64decode)(text + ("" if pad else "=" * (-len(text) % 4)))
                except ValueError:
                    continue
                again = (base64.b64encode(raw) if pad else base64.urlsafe_b64encode(raw).rstrip(b"=")).decode()
                if again == text:
                    return tag, raw
    return 0x06, text.encode()


def encode_compact(value, named=True, pseudonyms=None):
    """The one compact encoding of a JSON value (section 16) in either form of objects: named (tag 0x0D,
    names of the table by their position, and keyed pseudonyms as their bytes when the top is an object),
    as written since the table, or plain (tag 0x0C)."""
    if pseudonyms is None:
        pseudonyms = named and isinstance(value, dict)
    if value is None:
        return b"\x00"
    if value is True or value is False:
        return b"\x02" if value else b"\x01"
    if isinstance(value, float) and (value != int(value) or abs(value) >= 2 ** 53):
        return b"\x05" + struct.pack(">d", value)
    if isinstance(value, (int, float)):
        value = int(value)
        return b"\x03" + varint(value) if value >= 0 else b"\x04" + varint(-1 - value)
    if isinstance(value, str):
        tag, raw = string_form(value, pseudonyms)
        return bytes([tag]) + (raw if tag in (0x0A, 0x0E) else varint(len(raw)) + raw)
    if isinstance(value, list):
        return b"\x0b" + varint(len(value)) + b"".join(encode_compact(item, named, pseudonyms) for item in value)
    members = sorted((name.encode(), member) for name, member in value.items())

    def name_bytes(name):
        if not named:
            return varint(len(name)) + name
        if name in MEMBER_POSITIONS:
            return varint(MEMBER_POSITIONS[name] * 2 + 1)
        return varint(len(name) * 2) + name
    return (b"\x0d" if named else b"\x0c") + varint(len(members)) + b"".join(
        name_bytes(name) + encode_compact(member, named, pseudonyms) for name, member in members)


def decode_compact(data):
    """A compact value (section 16) as the JSON value it stands for. Strict: the value must be the one
    encoding of what it decodes to, so it is decoded, encoded again (in the form of its objects) and
    compared byte for byte."""
    offset = 0
    forms = set()

    def take(count):
        nonlocal offset
        if count > len(data) - offset:
            raise Problem("the compact payload ends inside a value")
        chunk = data[offset:offset + count]
        offset += count
        return chunk

    def number():
        value = shift = 0
        while True:
            byte = take(1)[0]
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if value >= 2 ** 64:
                    raise Problem("a compact number beyond 64 bits")
                return value
            if shift > 63:
                raise Problem("a compact number beyond 64 bits")

    def value(depth):
        if depth > MAX_COMPACT_DEPTH:
            raise Problem("a compact value nested deeper than %d" % MAX_COMPACT_DEPTH)
        tag = take(1)[0]
        if tag <= 0x02:
            return [None, False, True][tag]
        if tag == 0x03:
            return number()
        if tag == 0x04:
            magnitude = number()
            if magnitude > 2 ** 63 - 1:
                raise Problem("a compact negative number below -2^63")
            return -1 - magnitude
        if tag == 0x05:
            result, = struct.unpack(">d", take(8))
            if result != result or result in (float("inf"), float("-inf")):
                raise Problem("a compact number that is not finite")
            return result
        if tag == 0x06:
            try:
                return take(number()).decode("utf-8")
            except UnicodeDecodeError:
                raise Problem("a compact string that is not UTF-8")
        if tag == 0x07:
            return take(number()).hex()
        if tag == 0x08:
            return base64.b64encode(take(number())).decode()
        if tag == 0x09:
            return base64.urlsafe_b64encode(take(number())).rstrip(b"=").decode()
        if tag == 0x0A:
            zigzag = number()
            return render_time((zigzag >> 1) ^ -(zigzag & 1))
        if tag == 0x0E:
            if data[0] != 0x0D:
                raise Problem("a compact pseudonym outside a value whose top is a named object")
            return PSEUDONYM_PREFIX + take(32).hex()
        if tag == 0x0B:
            return [value(depth + 1) for _ in range(number())]
        if tag in (0x0C, 0x0D):
            forms.add(tag)
            members = {}
            for _ in range(number()):
                length = number()
                if tag == 0x0D:
                    if length & 1:
                        if length >> 1 >= len(MEMBER_NAMES):
                            raise Problem("a compact member name beyond the table")
                        members[MEMBER_NAMES[length >> 1]] = value(depth + 1)
                        continue
                    length >>= 1
                try:
                    name = take(length).decode("utf-8")
                except UnicodeDecodeError:
                    raise Problem("a compact member name that is not UTF-8")
                members[name] = value(depth + 1)
            return members
        raise Problem("unknown compact tag %d" % tag)

    result = value(0)
    if offset != len(data):
        raise Problem("%d bytes after the compact payload" % (len(data) - offset))
    if len(forms) > 1:
        raise Problem("a compact payload with objects of both forms")
    if encode_compact(result, named=0x0C not in forms) != data:
        raise Problem("the compact payload is not in its one canonical encoding")
    return result


def decode_payload(schema_version, payload):
    """The payload as a JSON value: compact when the schema version says so, else JSON text; `None` for
    a payload of another kind (an application's own bytes), which is only checked by its signature."""
    if schema_version & COMPACT_FLAG:
        if not payload or payload[0] >= 0x20:
            raise Problem("the schema version declares a compact payload and the payload is not one")
        return decode_compact(payload)
    try:
        return json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


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
    schema_version, = struct.unpack(">H", take(2))
    key_id = take(8)
    payload_length, = struct.unpack(">I", take(4))
    payload = take(payload_length)
    content = record[content_start:offset]
    signature = take(64)
    if offset != len(record):
        raise Problem("record has bytes after its signature")
    return sequence, key_id, PREFIX + content, signature, schema_version, payload


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
MISSING = object()  # an event shown without its payload
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
                shown = row.get("payload") or ""
                try:
                    payload = json.loads(shown) if shown else MISSING
                except (ValueError, RecursionError):
                    yield Problem("the CSV row of #%d has a payload that is not JSON" % sequence)
                    continue
                yield {"sequence": sequence, "record": row.get("record") or None, "leaf_hash": row.get("leaf_hash") or None,
                       "proof": proof.split(" ") if proof else [], "payload": payload}
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
                   "leaf_hash": member(entry, "leaf_hash", str, optional=True), "proof": member(entry, "proof", list),
                   "payload": entry.get("payload", MISSING)}
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
                recorded_sequence, key_id, signed_bytes, signature, schema_version, payload = decode_record(record)
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
                # What the bundle shows must be what was signed: the record's payload, decoded.
                value = decode_payload(schema_version, payload)
                if entry["payload"] is not MISSING and value is not None and entry["payload"] != value:
                    raise Problem("the payload shown is not the record's")
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
