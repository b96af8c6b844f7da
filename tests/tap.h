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
/*
 * Run fn in a child process: ok when it returns and the child exits 0,
 * not ok when it crashes or aborts (a check for "harmless" calls).
 */
int tap_in_child(void (*fn)(void), const char *name);
/* Prints "1..N"; returns 0 when every test passed, 1 otherwise. */
int tap_done(void);

/*
 * The whole file at path, NUL-terminated (*len, may be NULL, without the
 * NUL); NULL when it cannot be opened. Out of memory bails out.
 */
char *tap_slurp(const char *path, size_t *len);
/* The same for the file name in directory dir. */
char *tap_slurp_in(const char *dir, const char *name, size_t *len);
/* Write len bytes to path (created or truncated): 0, or -1 with errno. */
int tap_write_file(const char *path, const void *buf, size_t len);
/* A copy of exactly len bytes, no terminator, so over-reads show. */
char *tap_exact_copy(const char *s, size_t len);
/* Seconds (CLOCK_MONOTONIC) since *t0. */
struct timespec;
double tap_seconds_since(const struct timespec *t0);

/* Directory of fixtures: $srcdir/tests/fixtures (set by make check). */
const char *tap_fixture_dir(void);

#endif
