/*
 * dm_buf.h - the one growable byte and string buffer (lib/util/buf.c),
 * after Postfix's VSTRING: append bytes, append formatted, reset, take
 * the bytes. The contents are always NUL-terminated past len, so a
 * buffer of text is a C string as it grows.
 *
 * Memory follows the project's one policy: an allocation that fails
 * ends the process (dm_log_oom, exit 75), so none of these can fail and
 * none returns a status. The struct is open because buffers live on the
 * stack of their users; only these functions touch its members, and p
 * is read-only for the caller.
 */
#ifndef DM_BUF_H
#define DM_BUF_H

#include <stddef.h>

typedef struct dm_buf {
	char *p;		/* NULL until the first byte */
	size_t len, cap;
} dm_buf;

#define DM_BUF_INIT	{ NULL, 0, 0 }

void dm_buf_add(dm_buf *b, const void *p, size_t n);
void dm_buf_adds(dm_buf *b, const char *s);
void dm_buf_printf(dm_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dm_buf_reset(dm_buf *b);		/* empty, storage kept */
/* The bytes (malloc'ed, NUL-terminated, never NULL); b is left empty. */
char *dm_buf_take(dm_buf *b, size_t *len);
void dm_buf_free(dm_buf *b);

#endif
