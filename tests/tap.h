/*
 * tests/tap.h - a tiny TAP emitter for the unit tests. Every check prints
 * "ok N - name" or "not ok N - name" with what was expected; tap_done()
 * prints the plan and gives the exit status. No assert() anywhere.
 */
#ifndef TAP_H
#define TAP_H

#include <stddef.h>

int tap_ok(int cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int tap_is_int(long got, long want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* NULL compares equal only to NULL. */
int tap_is_str(const char *got, const char *want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tap_skip(int n, const char *reason);
/* Bail out: the test cannot go on (missing fixture, ...). */
void tap_bail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/* Prints "1..N"; returns 0 when every test passed, 1 otherwise. */
int tap_done(void);

/*
 * The whole file at path, NUL-terminated (*len, may be NULL, without the
 * NUL); NULL when it cannot be opened. Out of memory bails out.
 */
char *tap_slurp(const char *path, size_t *len);
/* Seconds (CLOCK_MONOTONIC) since *t0. */
struct timespec;
double tap_seconds_since(const struct timespec *t0);

/* Directory of fixtures: $srcdir/tests/fixtures (set by make check). */
const char *tap_fixture_dir(void);

#endif
