#!/bin/sh
# contrib/test.sh - the project's test command. On Debian 12 as root it
# installs the build and test dependencies that are missing, then:
#  1. builds out of tree with -Werror and runs every test (make check),
#     and make install into a scratch root;
#  2. builds again with ASan and UBSan (--enable-sanitizers, halting on
#     the first error) and runs every test again;
#  3. runs the milter's end-to-end tests (miltertest and a private
#     Postfix) with dmarc-milter under valgrind memcheck: no error and no
#     definitely lost block (tests/fixtures/valgrind.supp names the one
#     glibc block that is not ours).
# The last line it prints is "N passed, N failed", counted over every TAP
# result of the three.
#
# Usage: contrib/test.sh [--quick] [extra configure options]
#   --quick: step 1 only (what a developer runs between changes).
# Environment: BUILD_DIR (default: _build in the source tree); steps 2
# and 3 use BUILD_DIR/sanitizers and BUILD_DIR/valgrind.
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/_build}
quick=no
if [ "${1:-}" = "--quick" ]; then
	quick=yes
	shift
fi

install_deps() {
	sh "$src/contrib/install-deps.sh" build test
}

summary() {
	# One :test-result: line per TAP result in automake's .trs files.
	passed=0 failed=0
	for d in "$build/tests" "$build/sanitizers/tests" "$build/valgrind"; do
		[ -d "$d" ] || continue
		p=$(find "$d" -name '*.trs' -exec cat {} + |
		    grep -c '^:test-result: \(PASS\|XFAIL\|SKIP\)')
		f=$(find "$d" -name '*.trs' -exec cat {} + |
		    grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)')
		passed=$((passed + p))
		failed=$((failed + f))
	done
	[ "$1" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
	echo "$passed passed, $failed failed"
}

# The failed TAP lines of the logs under $1, with some context.
show_failures() {
	for f in $(find "$1" -name '*.log' ! -name test-suite.log); do
		if grep -q '^not ok\|^Bail out' "$f"; then
			echo "=== $f"
			grep -B2 -A6 '^not ok\|^Bail out' "$f" | head -60
		fi
	done
}

# configure, make and make check in directory $1 (configure options
# follow); 0 when every test passed.
build_check() {
	dir=$1
	shift
	mkdir -p "$dir" && cd "$dir" || return 1
	if ! "$src/configure" --enable-werror "$@" >configure.out 2>&1; then
		tail -20 configure.out
		return 1
	fi
	if ! make -j"$(nproc)" >make.out 2>&1; then
		grep -E 'error|Error' make.out | head -40
		return 1
	fi
	make -j"$(nproc)" check >check.out 2>&1
	r=$?
	grep -E '^(FAIL|ERROR|XPASS|SKIP):|^# (TOTAL|PASS|FAIL|SKIP|ERROR)' \
	    check.out
	[ $r -ne 0 ] && show_failures tests
	return $r
}

# Step 3: the milter's end-to-end tests with the milter under valgrind,
# through automake's TAP driver so that they count like the others.
valgrind_check() {
	vg="valgrind -q --error-exitcode=9 --leak-check=full"
	vg="$vg --errors-for-leak-kinds=definite --show-leak-kinds=definite"
	mkdir -p "$build/valgrind" || return 1
	r=0
	for t in milter_protocol.py milter_postfix.py milter_server.py; do
		srcdir=$src builddir=$build MILTER_WRAPPER=$vg BENCH_MESSAGES=20 \
		    sh "$src/build-aux/tap-driver.sh" --test-name "valgrind/$t" \
		    --log-file "$build/valgrind/$t.log" \
		    --trs-file "$build/valgrind/$t.trs" --color-tests no \
		    --enable-hard-errors yes --expect-failure no -- \
		    python3 "$src/tests/integration/$t" >/dev/null 2>&1 || r=1
		grep -q '^:test-result: \(FAIL\|ERROR\)' \
		    "$build/valgrind/$t.trs" && r=1
	done
	[ $r -ne 0 ] && show_failures "$build/valgrind"
	return $r
}

install_deps || { summary 1; exit 1; }
cd "$src" && autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; summary 1; exit 1; }
rm -rf "$build/sanitizers" "$build/valgrind"
build_check "$build" "$@"
rc=$?
# make install must work too: into a scratch root, never the system.
if [ -f "$build/Makefile" ] &&
    ! make -C "$build" install DESTDIR="$build/destdir" >"$build/install.out" 2>&1; then
	tail -20 "$build/install.out"
	rc=1
fi
if [ "$quick" = no ]; then
	echo "test.sh: the suite again with ASan and UBSan"
	build_check "$build/sanitizers" --enable-sanitizers "$@" || rc=1
	echo "test.sh: the milter's end-to-end tests under valgrind"
	valgrind_check || rc=1
fi
summary $rc
exit $rc
