/*
 * lib/util/buf.c - the growable buffer of dm_buf.h. It grows by
 * doubling, so appending n bytes in any pieces costs O(n); a size that
 * would overflow is treated as what it is, memory we cannot have.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_buf.h"
#include "dm_log.h"

#define BUF_FIRST	256

/* Room for n more bytes and the NUL. */
static void
buf_room(dm_buf *b, size_t n)
{
	size_t need, ncap;
	char *np;

	if (n > SIZE_MAX - b->len - 1)
		dm_log_oom();
	need = b->len + n + 1;
	if (need <= b->cap)
		return;
	for (ncap = b->cap ? b->cap : BUF_FIRST; ncap < need; ncap *= 2)
		if (ncap > SIZE_MAX / 2)
			dm_log_oom();
	if ((np = realloc(b->p, ncap)) == NULL)
		dm_log_oom();
	b->p = np;
	b->cap = ncap;
}

void
dm_buf_add(dm_buf *b, const void *p, size_t n)
{
	buf_room(b, n);
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
dm_buf_adds(dm_buf *b, const char *s)
{
	dm_buf_add(b, s, strlen(s));
}

void
dm_buf_printf(dm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;	/* an encoding error: the format's fault, not ours */
	buf_room(b, (size_t)n);
	va_start(ap, fmt);
	(void)vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	b->p[b->len] = '\0';
}

void
dm_buf_reset(dm_buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

char *
dm_buf_take(dm_buf *b, size_t *len)
{
	char *p;

	buf_room(b, 0);
	b->p[b->len] = '\0';
	p = b->p;
	if (len != NULL)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void
dm_buf_free(dm_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
