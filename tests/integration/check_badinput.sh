#!/bin/sh
# tests/integration/check_badinput.sh - feeds dmarc-check hostile input
# (garbage, NULs, huge fields, a 50 MB stream, DNS loops, bad usage) and
# checks it ends with a verdict or a one-line error, never a crash, with
# bounded memory. The cases live in badinput.py: streaming 50 MB into a
# child and reading its maximum RSS from wait4() is easier in Python.
dir=$(dirname "$0")
[ -f "$dir/badinput.py" ] || dir="${srcdir:-.}/tests/integration"
exec python3 "$dir/badinput.py" "$@"
