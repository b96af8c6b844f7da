/*
 * lib/urilist.c - the value of rua= and ruf=: a comma-separated list of
 * DMARC URIs, each with an optional "!size" limit (RFC 7489 6.2 and 6.4,
 * RFC 9989 4.6 and 4.8). Shared by the record parser and the report
 * generator.
 *
 * Readings of the texts:
 * - A URI is kept when it has an RFC 3986 scheme, a ':' and at least one
 *   more character, all of them URI characters (percent-escapes checked).
 *   Invalid items are skipped, not fatal: RFC 7489 6.6.3 and RFC 9989
 *   4.10.1 ask whether "at least one syntactically valid reporting URI"
 *   remains, so the others must survive a bad neighbour.
 * - Commas and '!' inside a URI MUST be percent-encoded, so the list splits
 *   at every comma and an item holds at most one raw '!', the one before
 *   its size. An item with a raw '!' that does not introduce a valid size
 *   is not a DMARC URI and is skipped.
 * - The size is 1*DIGIT with an optional k/m/g/t (powers of two, either
 *   case: ABNF literals are case-insensitive). It must fit in 64 bits
 *   after scaling; a URI whose size overflows is skipped. RFC 9989 keeps
 *   the size only as obsolete syntax that reporters should ignore; it is
 *   parsed anyway for RFC 7489 reporters, and "!0" (a limit no report
 *   can meet) reads as no limit.
 * - Whitespace (SP, HTAB and, as DKIM's FWS allows, CR and LF) around an
 *   item is dropped; empty items (",,", a trailing comma) are skipped.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dm_log.h"
#include "dm_record.h"

#define URILIST_FIRST_CAP 4

static bool
uri_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
uri_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
uri_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
uri_is_hex(unsigned char c)
{
	return uri_is_digit(c) || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * RFC 3986 unreserved, gen-delims and sub-delims, less ',' and '!', which
 * a DMARC URI must percent-encode. '%' is checked by the caller.
 */
static bool
uri_is_char(unsigned char c)
{
	if (uri_is_alpha(c) || uri_is_digit(c))
		return true;
	return c != '\0' && strchr("-._~:/?#[]@$&'()*+;=", c) != NULL;
}

static bool
uri_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !uri_is_alpha((unsigned char)s[0]))
		return false;
	for (i = 1; i < len && s[i] != ':'; i++) {
		if (!uri_is_alpha((unsigned char)s[i]) &&
		    !uri_is_digit((unsigned char)s[i]) &&
		    s[i] != '+' && s[i] != '-' && s[i] != '.')
			return false;
	}
	if (i >= len - 1)	/* no ':', or nothing after it */
		return false;
	for (i++; i < len; i++) {
		if (s[i] == '%') {
			if (len - i < 3 || !uri_is_hex((unsigned char)s[i + 1]) ||
			    !uri_is_hex((unsigned char)s[i + 2]))
				return false;
			i += 2;
		} else if (!uri_is_char((unsigned char)s[i]))
			return false;
	}
	return true;
}

static int
uri_unit_shift(unsigned char c)
{
	switch (c) {
	case 'k': case 'K':	return 10;
	case 'm': case 'M':	return 20;
	case 'g': case 'G':	return 30;
	case 't': case 'T':	return 40;
	}
	return -1;
}

/* 1*DIGIT [ "k" / "m" / "g" / "t" ], in bytes, false on overflow. */
static bool
uri_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;
	int shift = 0;

	for (i = 0; i < len && uri_is_digit((unsigned char)s[i]); i++) {
		if (n > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return false;
	if (i < len) {
		if (i + 1 != len ||
		    (shift = uri_unit_shift((unsigned char)s[i])) < 0)
			return false;
		if (n > (UINT64_MAX >> shift))
			return false;
	}
	*out = n << shift;
	return true;
}

/* One trimmed item: how much of it is the URI, and its limit. */
static bool
uri_item(const char *s, size_t len, size_t *urilen, uint64_t *size)
{
	size_t bang;

	*size = 0;
	*urilen = len;
	for (bang = len; bang > 0; bang--) {
		if (s[bang - 1] == '!')
			break;
	}
	if (bang > 0) {
		if (!uri_size(s + bang, len - bang, size))
			return false;
		*urilen = bang - 1;
	}
	return uri_valid(s, *urilen);
}

static void
uri_push(dm_urilist *l, size_t *cap, const char *s, size_t len,
    uint64_t size)
{
	dm_uri *v;
	char *copy;
	size_t ncap;

	if (l->n == *cap) {
		ncap = *cap == 0 ? URILIST_FIRST_CAP : *cap * 2;
		if ((v = reallocarray(l->v, ncap, sizeof(*v))) == NULL)
			dm_log_oom();
		l->v = v;
		*cap = ncap;
	}
	if ((copy = strndup(s, len)) == NULL)
		dm_log_oom();
	l->v[l->n].uri = copy;
	l->v[l->n].max_size = size;
	l->n++;
}

/*
 * *out is overwritten, not appended to. DM_OK even when no URI survived
 * (out->n == 0); out of memory ends the process. NULL with len 0 is an
 * empty list.
 */
dm_status
dm_urilist_parse(const char *s, size_t len, dm_urilist *out)
{
	size_t pos = 0, end, b, e, urilen, cap = 0;
	uint64_t size;

	out->v = NULL;
	out->n = 0;
	if (s == NULL)
		return len == 0 ? DM_OK : DM_PERMFAIL;
	for (;;) {
		for (end = pos; end < len && s[end] != ','; end++)
			continue;
		for (b = pos; b < end && uri_is_space((unsigned char)s[b]); b++)
			continue;
		for (e = end; e > b && uri_is_space((unsigned char)s[e - 1]); e--)
			continue;
		if (e > b && uri_item(s + b, e - b, &urilen, &size))
			uri_push(out, &cap, s + b, urilen, size);
		if (end >= len)
			break;
		pos = end + 1;
	}
	return DM_OK;
}

void
dm_urilist_clear(dm_urilist *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->v[i].uri);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
