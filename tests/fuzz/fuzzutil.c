/*
 * tests/fuzz/fuzzutil.c - helpers shared by the fuzz targets (fuzz.h).
 * Files are memfds: nothing touches the disk, and a target that runs
 * millions of times leaves nothing behind.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dm_action.h"
#include "dm_log.h"
#include "fuzz.h"

void
fuzz_quiet_log(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	dm_log_open("fuzz", NULL, 0);
	dm_log_set_level(DM_LOG_DEBUG);
}

char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		fuzz_fail("out of memory");
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

int
fuzz_memfile(const void *data, size_t size, char *path, size_t pathlen)
{
	const char *p = data;
	ssize_t w;
	int fd, e;

	if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
		return -1;
	while (size > 0) {
		if ((w = write(fd, p, size)) < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += w;
		size -= (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		goto fail;
	if (path != NULL)
		snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

void
fuzz_check_domain(const char *what, const char *d)
{
	size_t i, label = 0, len = strnlen(d, 254);

	if (len == 0 || len > 253)
		fuzz_fail("%s: domain of %zu bytes", what, len);
	for (i = 0; i < len; i++) {
		if (d[i] == '.' && label > 0 && i + 1 < len) {
			label = 0;
			continue;
		}
		if (!((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' &&
		    d[i] <= '9') || d[i] == '-' || d[i] == '_') || ++label > 63)
			fuzz_fail("%s: bad domain '%s' at byte %zu", what, d, i);
	}
}

void
fuzz_check_field(const char *f)
{
	const unsigned char *p;

	for (p = (const unsigned char *)f; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n' && p[2] == '\t') {
			p += 2;
			continue;
		}
		if (*p == '\r' || *p == '\n')
			fuzz_fail("line break not a fold in '%s'", f);
		if ((*p < 32 && *p != '\t') || *p == 127)
			fuzz_fail("control byte 0x%02x in '%s'", *p, f);
	}
}

void
fuzz_check_reply(const dm_action *a)
{
	const char *p;

	if (memchr(a->text, '\0', sizeof(a->text)) == NULL)
		fuzz_fail("reply text not terminated");
	for (p = a->text; *p != '\0'; p++)
		if (*p < 32 || *p > 126 || *p == '%')
			fuzz_fail("byte 0x%02x in reply '%s'",
			    (unsigned char)*p, a->text);
}

void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz finding: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}
