/*
 * tests/fuzz/fuzz_spfrec.c - libFuzzer target: one SPF TXT record (bytes
 * as DNS hands them over, NULs included) through dm_spfrec_parse, every
 * domain-spec it holds through dm_spf_macro_expand, and the whole input
 * as a macro-string of both kinds (a domain, an explanation).
 *
 * Besides memory errors: a record that parses has only known mechanisms
 * and qualifiers, CIDR lengths in range, no empty domain-spec; an
 * expansion is NUL-terminated within its buffer, and a domain is at
 * most 253 bytes unless it has no dot left to cut at.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dm_spfmacro.h"
#include "dm_spfrec.h"
#include "fuzz.h"

static const char *
fuzz_p(void *arg)
{
	return *(const char *)arg != '\0' ? "mx.example.org" : NULL;
}

static void
fuzz_env(dm_spf_menv *e, const uint8_t *data, size_t size)
{
	memset(e, 0, sizeof(*e));
	e->s = "strong-bad@email.example.com";
	e->l = "strong-bad";
	e->o = e->d = "email.example.com";
	e->h = "mx.example.org";
	e->i = "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0."
	    "0.2";
	e->c = "2001:db8::cb01";
	e->v = "ip6";
	e->r = "receiver.example";
	e->t = "1700000000";
	e->p = fuzz_p;
	/* %{p} finds a name or none, as the input's first byte says */
	e->parg = (void *)(size > 0 && (data[0] & 1) ? "y" : "");
}

static void
check_expand(const char *s, size_t len, dm_spf_mctx m, const dm_spf_menv *e)
{
	char out[1024];
	int n;

	n = dm_spf_macro_expand(s, len, m, e, out, sizeof(out));
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out) || strlen(out) != (size_t)n)
		fuzz_fail("expansion of %d bytes, %zu before the NUL", n,
		    strlen(out));
	if (m == DM_SPF_MDOMAIN && n > 253 && memchr(out, '.', (size_t)n))
		fuzz_fail("a domain of %d bytes kept a label to cut", n);
}

static void
check_term(const dm_spf_term *t, const dm_spf_menv *e)
{
	if (t->mech > DM_SPFM_EXISTS || strchr("+-~?", t->qual) == NULL ||
	    t->qual == '\0')
		fuzz_fail("mechanism %d, qualifier 0x%02x", (int)t->mech,
		    (unsigned char)t->qual);
	if (t->cidr4 < 0 || t->cidr4 > 32 || t->cidr6 < 0 || t->cidr6 > 128)
		fuzz_fail("CIDR lengths /%d //%d", t->cidr4, t->cidr6);
	if (t->spec == NULL)
		return;
	if (t->speclen == 0)
		fuzz_fail("an empty domain-spec was accepted");
	check_expand(t->spec, t->speclen, DM_SPF_MDOMAIN, e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *txt = (const char *)data, *spec;
	dm_spf_menv env;
	dm_spfrec *r;
	char why[160];
	size_t i, n, len;

	fuzz_quiet_log();
	fuzz_env(&env, data, size);
	check_expand(txt, size, DM_SPF_MDOMAIN, &env);
	check_expand(txt, size, DM_SPF_MEXP, &env);
	if (dm_spfrec_parse(txt, size, &r, why, sizeof(why)) != DM_OK) {
		if (r != NULL)
			fuzz_fail("a refused record came back");
		return 0;
	}
	if (!dm_spfrec_is_v1(txt, size) || memchr(txt, '\0', size) != NULL)
		fuzz_fail("a record that is no SPF record parsed");
	n = dm_spfrec_nterms(r);
	for (i = 0; i < n; i++)
		check_term(dm_spfrec_term(r, i), &env);
	if (dm_spfrec_term(r, n) != NULL)
		fuzz_fail("a term past the last");
	if ((spec = dm_spfrec_redirect(r, &len)) != NULL)
		check_expand(spec, len, DM_SPF_MDOMAIN, &env);
	if ((spec = dm_spfrec_exp(r, &len)) != NULL)
		check_expand(spec, len, DM_SPF_MDOMAIN, &env);
	dm_spfrec_free(r);
	return 0;
}
