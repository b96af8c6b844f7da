/*
 * tests/unit/test_urilist.c - the rua=/ruf= list parser, row by row: URI
 * syntax, !size units and overflow, whitespace, empty items, NUL and
 * 8-bit bytes, and a list of 10,000 URIs. Every input is copied into a
 * buffer of exactly its length, so a read past the end shows in valgrind.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_record.h"
#include "tap.h"

#define LIT(s)	s, sizeof(s) - 1

static const struct row {
	const char *name;
	const char *in;
	size_t len;
	const char *want;	/* "uri" or "uri!bytes", space-separated */
} rows[] = {
	{ "one mailto", LIT("mailto:a@x.example"), "mailto:a@x.example" },
	{ "two URIs", LIT("mailto:a@x.example,mailto:b@x.example"),
	  "mailto:a@x.example mailto:b@x.example" },
	{ "whitespace around commas",
	  LIT(" mailto:a@x.example ,\tmailto:b@x.example  "),
	  "mailto:a@x.example mailto:b@x.example" },
	{ "CRLF folding around a comma",
	  LIT("mailto:a@x.example,\r\n mailto:b@x.example"),
	  "mailto:a@x.example mailto:b@x.example" },
	{ "size in bytes", LIT("mailto:a@x.example!100"),
	  "mailto:a@x.example!100" },
	{ "size k", LIT("mailto:a@x.example!1k"), "mailto:a@x.example!1024" },
	{ "size K", LIT("mailto:a@x.example!2K"), "mailto:a@x.example!2048" },
	{ "size m", LIT("mailto:a@x.example!50m"),
	  "mailto:a@x.example!52428800" },
	{ "size g", LIT("mailto:a@x.example!1g"),
	  "mailto:a@x.example!1073741824" },
	{ "size t", LIT("mailto:a@x.example!1t"),
	  "mailto:a@x.example!1099511627776" },
	{ "size 0 means no limit", LIT("mailto:a@x.example!0"),
	  "mailto:a@x.example" },
	{ "size UINT64_MAX", LIT("mailto:a@x.example!18446744073709551615"),
	  "mailto:a@x.example!18446744073709551615" },
	{ "size UINT64_MAX+1 skipped",
	  LIT("mailto:a@x.example!18446744073709551616,mailto:b@x.example"),
	  "mailto:b@x.example" },
	{ "size 16777215t fits", LIT("mailto:a@x.example!16777215t"),
	  "mailto:a@x.example!18446742974197923840" },
	{ "size 16777216t overflows", LIT("mailto:a@x.example!16777216t"),
	  "" },
	{ "size 17179869184g overflows", LIT("mailto:a@x.example!17179869184g"),
	  "" },
	{ "size with 30 digits overflows",
	  LIT("mailto:a@x.example!999999999999999999999999999999"), "" },
	{ "empty size", LIT("mailto:a@x.example!"), "" },
	{ "unit without number", LIT("mailto:a@x.example!k"), "" },
	{ "unknown unit", LIT("mailto:a@x.example!10x"), "" },
	{ "two-letter unit", LIT("mailto:a@x.example!10kb"), "" },
	{ "negative size", LIT("mailto:a@x.example!-1"), "" },
	{ "space in size", LIT("mailto:a@x.example! 10"), "" },
	{ "raw ! in URI", LIT("mailto:a!b@x.example"), "" },
	{ "raw ! in URI and a size", LIT("mailto:a!b@x.example!10"), "" },
	{ "encoded ! in URI and a size", LIT("mailto:a%21b@x.example!10"),
	  "mailto:a%21b@x.example!10" },
	{ "encoded comma", LIT("mailto:a%2cb@x.example"),
	  "mailto:a%2cb@x.example" },
	{ "short percent escape", LIT("mailto:a%2@x.example"), "" },
	{ "bad percent escape", LIT("mailto:a%zz@x.example"), "" },
	{ "percent at the end", LIT("mailto:a@x.example%"), "" },
	{ "scheme starting with a digit", LIT("1mailto:a@x.example"), "" },
	{ "underscore in scheme", LIT("mai_lto:a@x.example"), "" },
	{ "scheme with + - .", LIT("x+y-z.w:foo"), "x+y-z.w:foo" },
	{ "empty scheme", LIT(":a@x.example"), "" },
	{ "nothing after the colon", LIT("mailto:"), "" },
	{ "no colon", LIT("mailto"), "" },
	{ "https with path, query, fragment",
	  LIT("https://r.example/p?q=1&r=2#f"), "https://r.example/p?q=1&r=2#f" },
	{ "IPv6 literal", LIT("http://[2001:db8::1]/r"), "http://[2001:db8::1]/r" },
	{ "upper-case scheme kept as published", LIT("MAILTO:A@X.EXAMPLE"),
	  "MAILTO:A@X.EXAMPLE" },
	{ "space inside a URI", LIT("mailto:a b@x.example"), "" },
	{ "8-bit byte in a URI", LIT("mailto:\xc3\xa9@x.example"), "" },
	{ "control byte in a URI", LIT("mailto:a\x01@x.example"), "" },
	{ "NUL inside a URI", LIT("mailto:a\0b@x.example,mailto:c@x.example"),
	  "mailto:c@x.example" },
	{ "empty list", LIT(""), "" },
	{ "only whitespace", LIT("   \t "), "" },
	{ "only commas", LIT(",,,"), "" },
	{ "trailing comma", LIT("mailto:a@x.example,"), "mailto:a@x.example" },
	{ "leading comma", LIT(",mailto:a@x.example"), "mailto:a@x.example" },
	{ "invalid ones skipped, order kept",
	  LIT("bogus,mailto:a@x.example!1k,also bogus,https://r.example/"),
	  "mailto:a@x.example!1024 https://r.example/" },
	{ "RFC 7489 B.2.4 rua",
	  LIT("mailto:dmarc-feedback@example.com,"
	      "mailto:tld-test@thirdparty.example.net!10m"),
	  "mailto:dmarc-feedback@example.com "
	  "mailto:tld-test@thirdparty.example.net!10485760" },
	{ "RFC 9989 B.2.5 rua",
	  LIT("mailto:dmarc-feedback@example.com, "
	      "mailto:tld-test@thirdparty.example.net"),
	  "mailto:dmarc-feedback@example.com "
	  "mailto:tld-test@thirdparty.example.net" },
};

static void
render(const dm_urilist *l, char *buf, size_t len)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < l->n && o < len; i++) {
		if (l->v[i].max_size > 0)
			o += (size_t)snprintf(buf + o, len - o, "%s%s!%" PRIu64,
			    i > 0 ? " " : "", l->v[i].uri, l->v[i].max_size);
		else
			o += (size_t)snprintf(buf + o, len - o, "%s%s",
			    i > 0 ? " " : "", l->v[i].uri);
	}
}

static void
clear_null(void)
{
	dm_urilist_clear(NULL);
}

static void
test_rows(void)
{
	const struct row *r;
	dm_urilist l;
	dm_status st;
	char got[4096], *in;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		r = &rows[i];
		in = tap_exact_copy(r->in, r->len);
		st = dm_urilist_parse(in, r->len, &l);
		free(in);
		tap_is_int(st, DM_OK, "%s: status", r->name);
		render(&l, got, sizeof(got));
		tap_is_str(got, r->want, "%s: URIs", r->name);
		dm_urilist_clear(&l);
	}
}

/* 10,000 URIs with sizes, then 10,000 invalid ones. */
static void
test_many(void)
{
	const size_t n = 10000;
	char *buf, want[64];
	size_t i, cap = n * 40, len = 0;
	dm_urilist l;
	dm_status st;

	if ((buf = malloc(cap)) == NULL)
		tap_bail("out of memory");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len,
		    "%smailto:r%zu@x.example!%zuk", i > 0 ? ", " : "", i, i + 1);
	st = dm_urilist_parse(buf, len, &l);
	tap_is_int(st, DM_OK, "10000 URIs: status");
	tap_is_int((long)l.n, (long)n, "10000 URIs: all kept");
	if (l.n == n) {
		tap_is_str(l.v[0].uri, "mailto:r0@x.example", "10000 URIs: first");
		tap_is_int((long)l.v[0].max_size, 1024, "10000 URIs: first size");
		snprintf(want, sizeof(want), "mailto:r%zu@x.example", n - 1);
		tap_is_str(l.v[n - 1].uri, want, "10000 URIs: last");
		tap_is_int((long)l.v[n - 1].max_size, (long)n * 1024,
		    "10000 URIs: last size");
	} else
		tap_skip(4, "wrong count");
	dm_urilist_clear(&l);

	len = 0;
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%sbad uri %zu",
		    i > 0 ? "," : "", i);
	st = dm_urilist_parse(buf, len, &l);
	tap_is_int(st, DM_OK, "10000 invalid URIs: status");
	tap_is_int((long)l.n, 0, "10000 invalid URIs: none kept");
	tap_ok(l.v == NULL, "10000 invalid URIs: nothing allocated");
	dm_urilist_clear(&l);
	free(buf);
}

static void
test_edges(void)
{
	dm_urilist l;

	tap_is_int(dm_urilist_parse(NULL, 0, &l), DM_OK, "NULL, 0: empty list");
	tap_is_int((long)l.n, 0, "NULL, 0: no URIs");
	tap_is_int(dm_urilist_parse(NULL, 5, &l), DM_PERMFAIL,
	    "NULL with a length: permfail");
	/* The length bounds the parse, not the terminator. */
	tap_is_int(dm_urilist_parse("mailto:a@x.example,mailto:b", 18, &l),
	    DM_OK, "prefix of a string: status");
	tap_is_int((long)l.n, 1, "prefix of a string: one URI");
	dm_urilist_clear(&l);
	dm_urilist_clear(&l);
	tap_ok(l.v == NULL && l.n == 0, "clear twice leaves an empty list");
	tap_in_child(clear_null, "clear(NULL) is harmless");
}

int
main(void)
{
	test_rows();
	test_many();
	test_edges();
	return tap_done();
}
