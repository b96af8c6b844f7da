#!/usr/bin/env python3
"""tests/integration/check_layers.py - the arrows point down: what each
layer of the source tree may include, checked on every #include.

- lib/util/ is the bottom: system headers, config.h and the headers of
  lib/util/ itself (UTIL below), nothing else of lib/.
- lib/ includes lib/'s own headers (include/dm_*.h) and no header of
  milter/, report/ or tools/, and no MTA protocol.
- milter/, report/ and tools/ use lib/ and their own headers, never
  each other's.
One TAP line per file."""

import os
import re
import sys

SRC = os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
UTIL = {"dm_status.h", "dm_log.h", "dm_hash.h", "dm_hex.h", "dm_buf.h"}
INC = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return INC.findall(f.read())


def local(incs):
    return [name for kind, name in incs if kind == '"' and
            name != "config.h"]


def check(rel, allowed):
    bad = [n for n in local(includes(os.path.join(SRC, rel)))
           if not allowed(n)]
    return not bad, bad


def own_dir(d):
    names = set(os.listdir(os.path.join(SRC, d)))
    return lambda n: n in names or n.startswith("dm_")


def files(d, exts=(".c", ".h")):
    full = os.path.join(SRC, d)
    return sorted(os.path.join(d, f) for f in os.listdir(full)
                  if f.endswith(exts))


def main():
    rules = []
    for f in files("lib/util"):
        rules.append((f, lambda n: n in UTIL))
    for f in files("include"):
        if os.path.basename(f) in UTIL:
            rules.append((f, lambda n: n in UTIL))
        else:
            rules.append((f, lambda n: n.startswith("dm_")))
    for f in files("lib", (".c",)):
        rules.append((f, lambda n: n.startswith("dm_")))
    for d in ("milter", "report", "tools"):
        if os.path.isdir(os.path.join(SRC, d)):
            for f in files(d):
                rules.append((f, own_dir(d)))
    n = failed = 0
    for rel, allowed in rules:
        ok, bad = check(rel, allowed)
        n += 1
        print("%s %d - %s includes only what its layer may" % (
            "ok" if ok else "not ok", n, rel))
        if not ok:
            failed += 1
            print("# includes %s" % ", ".join(bad))
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
