/*
 * tests/fuzz/fuzz_ruaverify.c - libFuzzer target: which rua addresses
 * get a report (dm_rua_verify), against the zones of
 * tests/fixtures/ruaverify.conf. Input: a policy domain on the first
 * line, then a rua= value as DNS would hand it over.
 *
 * The addresses that come out go on sendmail's command line and into
 * SMTP RCPT commands, so beyond memory errors each must be one plain
 * local@domain (dot-atom local part, normalised domain), no two alike,
 * at most DM_RUA_MAX of them.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dm_orgdomain.h"
#include "dm_resolver.h"
#include "dm_ruaverify.h"
#include "fuzz.h"

#ifndef FUZZ_FIXTURE_DIR
#define FUZZ_FIXTURE_DIR "tests/fixtures"
#endif

static dm_resolver *resolver;
static dm_org *org;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	resolver = dm_resolver_new(FUZZ_FIXTURE_DIR "/ruaverify.conf", 1000,
	    err, sizeof(err));
	if (resolver == NULL)
		fuzz_fail("resolver: %s", err);
	if ((org = dm_org_new(DM_ORG_TREEWALK, resolver, NULL, err,
	    sizeof(err))) == NULL)
		fuzz_fail("org: %s", err);
	return 0;
}

/* RFC 5322 dot-atom text: atext runs joined by single dots. */
static bool
dot_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : !((s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    strchr("!#$%&'*+-/=^_`{|}~", s[i]) != NULL))
			return false;
	}
	return true;
}

static void
check_dests(const dm_rua_dest *d, size_t nd)
{
	const char *at;
	size_t i, j;

	if (nd > DM_RUA_MAX)
		fuzz_fail("%zu destinations", nd);
	for (i = 0; i < nd; i++) {
		if (memchr(d[i].addr, '\0', sizeof(d[i].addr)) == NULL ||
		    (at = strchr(d[i].addr, '@')) == NULL)
			fuzz_fail("destination %zu is no address", i);
		if (!dot_atom(d[i].addr, (size_t)(at - d[i].addr)))
			fuzz_fail("'%s': local part not a dot-atom", d[i].addr);
		fuzz_check_domain("rua host", at + 1);
		for (j = 0; j < i; j++)
			if (strcasecmp(d[i].addr, d[j].addr) == 0)
				fuzz_fail("'%s' twice", d[i].addr);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t dlen = nl != NULL ? (size_t)(nl - data) : size;
	char *domain = fuzz_cstr(data, dlen);
	dm_rua_dest *d = NULL;
	dm_rua_skip *s = NULL;
	dm_urilist l;
	size_t nd, ns, i;

	dlen += dlen < size;
	if (dm_urilist_parse((const char *)data + dlen, size - dlen, &l) !=
	    DM_OK)
		fuzz_fail("dm_urilist_parse: out of memory");
	{
		(void)dm_rua_verify(resolver, org, domain, &l, &d, &nd, &s, &ns);
		check_dests(d, nd);
		for (i = 0; i < ns; i++)
			if (memchr(s[i].why, '\0', sizeof(s[i].why)) == NULL)
				fuzz_fail("skip reason not terminated");
	}
	free(d);
	free(s);
	dm_urilist_clear(&l);
	free(domain);
	return 0;
}
