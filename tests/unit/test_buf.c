/*
 * tests/unit/test_buf.c - the growable buffer and the hash of lib/util:
 * appends of every size keep the bytes and the NUL after them, printf
 * of any length, reset, take; FNV-1a against its published vectors.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_buf.h"
#include "dm_hash.h"
#include "tap.h"

static void
test_grow(void)
{
	dm_buf b = DM_BUF_INIT;
	char want[5000];
	size_t i, n = 0;

	for (i = 0; i < 100; i++) {
		memset(want + n, 'a' + (int)(i % 26), i);
		dm_buf_add(&b, want + n, i);
		n += i;
	}
	tap_is_int((long)b.len, (long)n, "100 appends of 0..99 bytes: length");
	tap_ok(memcmp(b.p, want, n) == 0 && b.p[n] == '\0',
	    "the bytes, in order, and a NUL after them");
	tap_ok(b.cap > b.len, "room for the NUL");
	dm_buf_reset(&b);
	tap_ok(b.len == 0 && b.p[0] == '\0', "reset: empty, a C string");
	dm_buf_free(&b);
}

static void
test_printf(void)
{
	dm_buf b = DM_BUF_INIT;
	char *big = malloc(10001), *p;
	size_t len;

	if (big == NULL)
		tap_bail("malloc");
	memset(big, 'x', 10000);
	big[10000] = '\0';
	dm_buf_adds(&b, "n=");
	dm_buf_printf(&b, "%d;%s", 42, "ok");
	tap_is_str(b.p, "n=42;ok", "printf appends");
	dm_buf_printf(&b, "%s", big);
	tap_is_int((long)b.len, 7 + 10000, "printf of 10,000 bytes: no cut");
	dm_buf_printf(&b, "%s", "");
	tap_is_int((long)b.len, 10007, "printf of nothing adds nothing");
	p = dm_buf_take(&b, &len);
	tap_ok(p != NULL && len == 10007 && p[len] == '\0' && b.p == NULL &&
	    b.len == 0, "take: the bytes handed over, the buffer empty");
	free(p);
	p = dm_buf_take(&b, &len);
	tap_ok(p != NULL && len == 0 && p[0] == '\0',
	    "take of an empty buffer: an empty string, never NULL");
	free(p);
	free(big);
}

/* The FNV-1a 32-bit test vectors of its authors. */
static void
test_hash(void)
{
	static const struct { const char *s; uint32_t h; } v[] = {
		{ "", 0x811c9dc5u }, { "a", 0xe40c292cu },
		{ "foobar", 0xbf9cf968u },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		tap_ok(dm_hash_str(DM_HASH_INIT, v[i].s) == v[i].h,
		    "fnv1a('%s') = %08x", v[i].s, (unsigned)v[i].h);
		tap_ok(dm_hash_add(DM_HASH_INIT, v[i].s, strlen(v[i].s)) ==
		    v[i].h, "fnv1a over bytes of '%s'", v[i].s);
	}
}

int
main(void)
{
	test_grow();
	test_printf();
	test_hash();
	return tap_done();
}
