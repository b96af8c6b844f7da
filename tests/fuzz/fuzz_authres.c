/*
 * tests/fuzz/fuzz_authres.c - libFuzzer target: Authentication-Results,
 * both ways. The input is up to four NUL-separated parts:
 *   1. an A-R field body as a sender may forge it: its authserv-id and
 *      its spf= result are read (dm_authres_servid, dm_authres_read_spf);
 *   2. an authserv-id, 3. a DKIM selector, 4. a DKIM error text:
 * with the SPF outcome read from part 1, they make the verdict whose A-R
 * field we write (dm_authres_format). What we write must stay one field:
 * printable ASCII, and line breaks only as the "CRLF TAB" folds. And
 * the spf= result is read only from the field's own properties: a
 * comment, or a reason whose text looks like a property, added to a
 * field changes nothing that is read from it (issue 12).
 * (List-Id has no parser: the engine only notes that it is there; the
 * engine target covers it.)
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "dm_authres.h"
#include "fuzz.h"

#define NPARTS 4

/* Split at NUL into up to NPARTS C strings (absent parts are ""). */
static void
split(char *buf, size_t size, const char *part[NPARTS])
{
	size_t i, n = 0;

	for (i = 0; i < NPARTS; i++)
		part[i] = "";
	part[n++] = buf;
	for (i = 0; i < size && n < NPARTS; i++)
		if (buf[i] == '\0')
			part[n++] = buf + i + 1;
}

static void
check_servid(const char *value, size_t outlen)
{
	char *out = malloc(outlen);
	size_t i;

	if (out == NULL)
		fuzz_fail("out of memory");
	if (dm_authres_servid(value, out, outlen) == DM_OK) {
		if (out[0] == '\0' || strlen(out) >= outlen)
			fuzz_fail("authserv-id '%s' in %zu bytes", out, outlen);
		for (i = 0; out[i] != '\0'; i++)
			if (out[i] >= 'A' && out[i] <= 'Z')
				fuzz_fail("authserv-id '%s' not lower-cased",
				    out);
	}
	free(out);
}

static void
check_format(const dm_spf_outcome *spf, const char *const part[NPARTS])
{
	dm_dkim_sig sig = { .result = DM_DKIM_FAIL };
	const dm_dkim_sig *sigs[1] = { &sig };
	dm_verdict v = { .from_state = DM_FROM_MISSING, .sigs = sigs,
	    .nsigs = 1, .spf = *spf };
	char *field;

	strlcpy(sig.domain, spf->domain, sizeof(sig.domain));
	strlcpy(sig.selector, part[2], sizeof(sig.selector));
	strlcpy(sig.error, part[3], sizeof(sig.error));
	field = dm_authres_format(&v, part[1][0] ? part[1] : "mx.example",
	    "\r\n", NULL);
	fuzz_check_field(field);
	free(field);
}

static bool
same_outcome(const dm_spf_outcome *a, const dm_spf_outcome *b)
{
	return a->result == b->result && a->scope == b->scope &&
	    strcmp(a->domain, b->domain) == 0;
}

/* value with text put after its first n bytes, read again. */
static void
check_insert(const char *value, size_t n, const char *text, dm_status want,
    const dm_spf_outcome *o)
{
	size_t len = strlen(value), tl = strlen(text);
	char *v = malloc(len + tl + 1);
	dm_spf_outcome o2;
	dm_status st;

	if (v == NULL)
		fuzz_fail("out of memory");
	memcpy(v, value, n);
	memcpy(v + n, text, tl);
	memcpy(v + n + tl, value + n, len - n + 1);
	memset(&o2, 0, sizeof(o2));
	st = dm_authres_read_spf(v, &o2);
	if (st != want || (st == DM_OK && !same_outcome(o, &o2)))
		fuzz_fail("inserting '%s' changed the spf= read: %d -> %d "
		    "(%s -> %s)", text, want, st, o->domain, o2.domain);
	free(v);
}

/*
 * A comment after the authserv-id, and a resinfo with a lying reason at
 * the end, must not change what is read. Only where the field parsed
 * (a PERMFAIL field may end inside a quote or a comment), and only with
 * a field that ends where a resinfo may follow.
 */
static void
check_own_properties(const char *value, dm_status st,
    const dm_spf_outcome *o)
{
	size_t n = strcspn(value, " \t\r\n(;\"");

	if (st == DM_PERMFAIL || n == 0 || value[n] == '"')
		return;
	check_insert(value, n, " (spf=pass smtp.mailfrom=a@zz.example)", st,
	    o);
	if (strlen(value) > 0 && strchr(" \t\r\n", value[strlen(value) - 1]))
		return;
	check_insert(value, strlen(value), "; x=pass reason=\"; spf=pass "
	    "smtp.mailfrom=a@zz.example\"", st, o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_cstr(data, size);
	const char *part[NPARTS];
	dm_spf_outcome o;
	dm_status st;

	fuzz_quiet_log();
	split(buf, size, part);
	check_servid(part[0], 256);
	check_servid(part[0], 1 + size % 16);
	memset(&o, 0, sizeof(o));
	st = dm_authres_read_spf(part[0], &o);
	check_own_properties(part[0], st, &o);
	if (st == DM_OK) {
		fuzz_check_domain("spf identity", o.domain);
		if (o.result > DM_SPF_PERMERROR || o.scope > DM_SPF_SCOPE_HELO)
			fuzz_fail("spf result or scope out of range");
	} else
		memset(&o, 0, sizeof(o));	/* the engine drops it */
	check_format(&o, part);
	free(buf);
	return 0;
}
