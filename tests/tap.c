/*
 * tests/tap.c - the TAP emitter behind tests/tap.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

static int tap_n;
static int tap_failed;

static int
tap_vresult(int cond, const char *fmt, va_list ap)
{
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	vprintf(fmt, ap);
	putchar('\n');
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

int
tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(cond, fmt, ap);
	va_end(ap);
	return cond;
}

int
tap_is_int(long got, long want, const char *fmt, ...)
{
	va_list ap;
	int cond = got == want;

	va_start(ap, fmt);
	tap_vresult(cond, fmt, ap);
	va_end(ap);
	if (!cond)
		printf("#   got: %ld\n#   expected: %ld\n", got, want);
	return cond;
}

int
tap_is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	int cond;

	if (got == NULL || want == NULL)
		cond = got == want;
	else
		cond = strcmp(got, want) == 0;
	va_start(ap, fmt);
	tap_vresult(cond, fmt, ap);
	va_end(ap);
	if (!cond)
		printf("#   got: '%s'\n#   expected: '%s'\n",
		    got ? got : "(null)", want ? want : "(null)");
	return cond;
}

void
tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void
tap_skip(int n, const char *reason)
{
	while (n-- > 0)
		printf("ok %d # SKIP %s\n", ++tap_n, reason);
}

int
tap_in_child(void (*fn)(void), const char *name)
{
	pid_t pid;
	int status = 0;

	fflush(stdout);
	if ((pid = fork()) < 0)
		tap_bail("fork: %s", strerror(errno));
	if (pid == 0) {
		fn();
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		tap_bail("waitpid: %s", strerror(errno));
	return tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "%s (child status %d)", name, status);
}

void
tap_bail(const char *fmt, ...)
{
	va_list ap;

	fputs("Bail out! ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	exit(1);
}

int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed != 0 || tap_n == 0;
}

const char *
tap_fixture_dir(void)
{
	static char dir[4096];
	const char *src = getenv("srcdir");

	snprintf(dir, sizeof(dir), "%s/tests/fixtures", src ? src : ".");
	return dir;
}

char *
tap_slurp(const char *path, size_t *len)
{
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0, got;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	do {
		if (cap - n < 65536) {
			if ((nb = realloc(buf, cap + 65536 + 1)) == NULL)
				tap_bail("realloc");
			buf = nb;
			cap += 65536;
		}
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
	} while (got > 0);
	fclose(fp);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

char *
tap_slurp_in(const char *dir, const char *name, size_t *len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return tap_slurp(path, len);
}

int
tap_write_file(const char *path, const void *buf, size_t len)
{
	FILE *fp;
	int ok;

	if ((fp = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(buf, 1, len, fp) == len;
	return fclose(fp) == 0 && ok ? 0 : -1;
}

char *
tap_exact_copy(const char *s, size_t len)
{
	char *p;

	if ((p = malloc(len > 0 ? len : 1)) == NULL)
		tap_bail("out of memory");
	memcpy(p, s, len);
	return p;
}

double
tap_seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}
