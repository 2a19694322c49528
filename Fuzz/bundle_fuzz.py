#!/usr/bin/env python3
"""The compliance-bundle fuzz target: tools/verify_bundle.py, the auditor's verifier, fed hostile bundles,
coverage-guided by atheris (libFuzzer for Python; `pip install atheris`).

    python3 Fuzz/bundle_fuzz.py [libFuzzer options] CORPUS_DIR   fuzz (tools/fuzz bundle does this)
    python3 Fuzz/bundle_fuzz.py --replay FILE...                 run these inputs once (seeds, crashes),
                                                                 without atheris
    python3 Fuzz/bundle_fuzz.py --check-seeds DIR                every seed verifies (exit 0), and one
                                                                 changed byte in its events does not

An input is the bundle's manifest.json, its keys, checkpoint.txt and event file, joined by NUL--NUL
(Fuzz/make_seeds.py writes the seeds so). The verifier must answer every input with its exit code (0, 1
or 2) and its lines: any exception that escapes it is a crash, and so is an input that runs over
libFuzzer's -timeout.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))

SEPARATOR = b"\0--\0"


def split(data):
    parts = data.split(SEPARATOR, 3)
    return parts + [b""] * (4 - len(parts))


def run(verify_bundle, data):
    manifest, keys, checkpoint, events = split(data)
    lines = []
    code = verify_bundle.verify(manifest, keys, checkpoint, lambda name: events, report=lines.append)
    if code not in (0, 1, 2) or not lines:
        raise AssertionError("the verifier answered %r with %d lines" % (code, len(lines)))
    return code, lines


def check_seeds(directory):
    import verify_bundle
    failures = 0
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as handle:
            data = handle.read()
        code, lines = run(verify_bundle, data)
        manifest, keys, checkpoint, events = split(data)
        # A byte of the first event's record (its base64 starts with the record prefix's) or, with the
        # records omitted, of its leaf hash changed: not verified.
        record = events.find(b"QXV0aExlZGdlci9ldmVudC92MQ")
        at = record + 40 if record >= 0 else events.find(b'"leaf_hash":"') + 20
        flipped = events[:at] + (b"B" if events[at:at + 1] != b"B" else b"C") + events[at + 1:]
        tampered, _ = run(verify_bundle, SEPARATOR.join([manifest, keys, checkpoint, flipped]))
        ok = code == 0 and tampered == 1
        failures += not ok
        print("%s %s: verifies %d, changed byte %d (%s)" % ("ok" if ok else "FAILED", name, code, tampered, lines[-1][:80]))
        # A manifest naming a file outside the bundle is unusable: the verifier reads nothing else.
        escaping = manifest.replace(b'"event_file":"', b'"event_file":"../../', 1)
        code, lines = run(verify_bundle, SEPARATOR.join([escaping, keys, checkpoint, events]))
        if code != 2:
            failures += 1
            print("FAILED %s: a manifest naming ../../ was answered %d: %s" % (name, code, lines[-1][:80]))
    return 1 if failures else 0


def replay(paths):
    import verify_bundle
    for path in paths:
        with open(path, "rb") as handle:
            code, lines = run(verify_bundle, handle.read())
        print("%s: %d (%s)" % (os.path.basename(path), code, lines[-1][:80]))
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-seeds":
        return check_seeds(sys.argv[2])
    if len(sys.argv) >= 2 and sys.argv[1] == "--replay":
        return replay(sys.argv[2:])
    import atheris
    with atheris.instrument_imports():
        import verify_bundle
    atheris.Setup(sys.argv, lambda data: run(verify_bundle, data))
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
