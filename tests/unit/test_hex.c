/*
 * tests/unit/test_hex.c - %XX coding: every escape round-trips, and the
 * decoder takes exactly two hex digits after '%' and never makes a NUL
 * (the forms the old rptjsrc decoder let through with sscanf's "%2X").
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dm_hex.h"
#include "tap.h"

static const struct row {
	const char *in;
	int ok;
	const char *out;
} rows[] = {
	{ "plain", 1, "plain" },
	{ "", 1, "" },
	{ "a%3Bb", 1, "a;b" },
	{ "%3b%3B", 1, ";;" },
	{ "%41%42%43", 1, "ABC" },
	{ "%C3%BC", 1, "\xc3\xbc" },
	{ "%FF", 1, "\xff" },
	{ "100%", 0, NULL },
	{ "%4", 0, NULL },
	{ "% A", 0, NULL },
	{ "%+A", 0, NULL },
	{ "%-1", 0, NULL },
	{ "%0x", 0, NULL },
	{ "%G0", 0, NULL },
	{ "%00", 0, NULL },
	{ "a%%41", 0, NULL },
};

static void
test_rows(void)
{
	char out[64];
	size_t i;
	bool ok;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ok = dm_hex_decode(rows[i].in, strlen(rows[i].in), out,
		    sizeof(out));
		tap_is_int(ok, rows[i].ok, "decode '%s': %s", rows[i].in,
		    rows[i].ok ? "accepted" : "refused");
		if (ok && rows[i].ok)
			tap_is_str(out, rows[i].out, "decode '%s'", rows[i].in);
	}
}

/* Every byte but NUL escapes and decodes back; room is checked. */
static void
test_round_trip(void)
{
	char esc[4], out[2];
	int c, bad = 0;

	for (c = 1; c < 256; c++) {
		dm_hex_escape((unsigned char)c, esc);
		if (strlen(esc) != 3 || !dm_hex_decode(esc, 3, out,
		    sizeof(out)) || (unsigned char)out[0] != c)
			bad++;
	}
	tap_is_int(bad, 0, "bytes 1..255 escape and decode back");
	dm_hex_escape(0xab, esc);
	tap_is_str(esc, "%AB", "escape is upper case");
	tap_ok(!dm_hex_decode("abc", 3, out, sizeof(out)), "no room: false");
	tap_ok(!dm_hex_decode("a\0b", 3, out, sizeof(out)),
	    "a NUL in the input: false");
	tap_ok(dm_hex_decode("ab", 1, out, sizeof(out)) &&
	    strcmp(out, "a") == 0, "n bounds the input");
}

int
main(void)
{
	test_rows();
	test_round_trip();
	return tap_done();
}
