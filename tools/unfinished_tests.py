#!/usr/bin/env python3
"""Name the tests that started and never finished, from the output of `swift test` (Swift Testing).

    python3 tools/unfinished_tests.py LOG

tools/sanitizers calls it when a sanitized run fails or runs out of time, so that a test hanging under a
sanitizer is named in CI's output instead of leaving only the time limit to say something went wrong.
Tests are matched by their display name; two unfinished tests with the same name are counted twice.
"""
import re
import sys
from collections import Counter

STARTED = re.compile(r"^\S+ Test (?!case passing |run started)(.+) started\.$")
# A parameterized test ends with 'Test "name" with N test cases passed after ...'; its cases only start.
ENDED = re.compile(r"^\S+ Test (.+?)(?: with \d+ test cases?)? (?:(?:passed|failed) after \d|skipped)")


def unfinished(lines):
    open_tests = Counter()
    for line in lines:
        line = line.rstrip("\n")
        if match := STARTED.match(line):
            open_tests[match.group(1)] += 1
        elif (match := ENDED.match(line)) and open_tests[match.group(1)] > 0:
            open_tests[match.group(1)] -= 1
    return sorted(name for name, count in open_tests.items() for _ in range(count))


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1], errors="replace") as log:
        names = unfinished(log)
    if not names:
        print("unfinished tests: none (every test that started, ended)")
        return 0
    print(f"unfinished tests ({len(names)}): started, never passed or failed:")
    for name in names:
        print(f"  {name}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
