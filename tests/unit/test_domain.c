/*
 * tests/unit/test_domain.c - the one normal form of domain names: case,
 * trailing dot, label and length limits, characters, IDNA.
 */
#include "config.h"

#include <string.h>

#include "dm_domain.h"
#include "dm_from.h"
#include "tap.h"

static const struct row {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	dm_status want;
	const char *out;
} rows[] = {
	{ "example.com", 0, DM_OK, "example.com" },
	{ "Example.COM", 0, DM_OK, "example.com" },
	{ "example.com.", 0, DM_OK, "example.com" },
	{ "EXAMPLE.com.", 0, DM_OK, "example.com" },
	{ "localhost", 0, DM_OK, "localhost" },
	{ "sel._domainkey.example.com", 0, DM_OK,
	  "sel._domainkey.example.com" },
	{ "a-b.c-d.example", 0, DM_OK, "a-b.c-d.example" },
	{ "b\xc3\xbc" "cher.example", 0, DM_OK, "xn--bcher-kva.example" },
	{ "B\xc3\x9c" "CHER.example", 0, DM_OK, "xn--bcher-kva.example" },
	{ "xn--bcher-kva.example", 0, DM_OK, "xn--bcher-kva.example" },
	{ "\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", 0,
	  DM_OK, "xn--r8jz45g.xn--zckzah" },
	{ "", 0, DM_PERMFAIL, "" },
	{ ".", 0, DM_PERMFAIL, "" },
	{ "..", 0, DM_PERMFAIL, "" },
	{ ".example.com", 0, DM_PERMFAIL, "" },
	{ "example..com", 0, DM_PERMFAIL, "" },
	{ "example.com..", 0, DM_PERMFAIL, "" },
	{ "exa mple.com", 0, DM_PERMFAIL, "" },
	{ "[192.0.2.1]", 0, DM_PERMFAIL, "" },
	{ "a@b.example", 0, DM_PERMFAIL, "" },
	{ "evil.example;x=y", 0, DM_PERMFAIL, "" },
	{ "evil.example\r\nX-Injected: 1", 0, DM_PERMFAIL, "" },
	{ "nul\0.example", 12, DM_PERMFAIL, "" },
	{ "bad\xff\xfe.example", 0, DM_PERMFAIL, "" },
	{ "bad\xc3.example", 0, DM_PERMFAIL, "" },
	{ "example.com", 7, DM_OK, "example" },
	{ "0123456789012345678901234567890123456789012345678901234567890123"
	  ".example", 0, DM_PERMFAIL, "" },
	{ "012345678901234567890123456789012345678901234567890123456789012"
	  ".example", 0, DM_OK,
	  "012345678901234567890123456789012345678901234567890123456789012"
	  ".example" },
};

static void
test_total_length(void)
{
	char in[300], out[DM_DOMAIN_MAX];
	size_t i;

	/* 63+1+63+1+63+1+61 = 253: the longest name there is. */
	memset(in, 'a', sizeof(in));
	in[63] = in[127] = in[191] = '.';
	tap_is_int(dm_domain_normalize(in, 253, out, sizeof(out)), DM_OK,
	    "a 253-octet name is a domain");
	tap_is_int((long)strlen(out), 253, "and keeps its length");
	tap_is_int(dm_domain_normalize(in, 254, out, sizeof(out)),
	    DM_PERMFAIL, "a 254-octet name is not");
	tap_is_int(dm_domain_normalize(in, 253, out, 100), DM_PERMFAIL,
	    "a name longer than the output is refused, not cut");
	for (i = 0; i < sizeof(in); i++)
		in[i] = 'a';
	tap_is_int(dm_domain_normalize(in, sizeof(in), out, sizeof(out)),
	    DM_PERMFAIL, "one 300-octet label is refused");
}

int
main(void)
{
	char out[DM_DOMAIN_MAX];
	size_t i, len;
	dm_status st;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		len = rows[i].len ? rows[i].len : strlen(rows[i].in);
		st = dm_domain_normalize(rows[i].in, len, out, sizeof(out));
		tap_is_int(st, rows[i].want, "row %zu '%s': status", i,
		    rows[i].want == DM_OK ? rows[i].out : "(invalid)");
		if (st == DM_OK)
			tap_is_str(out, rows[i].out, "row %zu: form", i);
	}
	test_total_length();
	return tap_done();
}
