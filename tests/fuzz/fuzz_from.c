/*
 * tests/fuzz/fuzz_from.c - libFuzzer target: a From field body through
 * dm_from_parse, and the same bytes through dm_domain_normalize. The
 * author domains decide which policy applies, so beyond memory errors
 * they must be what dm_from.h promises: normalised, distinct, bounded,
 * and normalising one again changes nothing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dm_from.h"
#include "fuzz.h"

static void
check_normal(const char *what, const char *d)
{
	char again[DM_DOMAIN_MAX];

	fuzz_check_domain(what, d);
	if (dm_domain_normalize(d, strlen(d), again, sizeof(again)) != DM_OK ||
	    strcmp(again, d) != 0)
		fuzz_fail("%s: '%s' is not a fixed point", what, d);
}

static void
check_addrs(const dm_from_addrs *a)
{
	size_t i, j;

	if (a->n > DM_FROM_MAX_DOMAINS || (a->n < DM_FROM_MAX_DOMAINS &&
	    a->truncated))
		fuzz_fail("%zu domains, truncated %d", a->n, a->truncated);
	if (a->nbad > a->nmailboxes || a->nmailboxes == 0)
		fuzz_fail("%zu bad of %zu mailboxes", a->nbad, a->nmailboxes);
	if (a->n == 0 && a->nbad == 0)
		fuzz_fail("no domain and no bad mailbox");
	for (i = 0; i < a->n; i++) {
		check_normal("author", a->domain[i]);
		for (j = 0; j < i; j++)
			if (strcmp(a->domain[i], a->domain[j]) == 0)
				fuzz_fail("'%s' twice", a->domain[i]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char d[DM_DOMAIN_MAX];
	dm_from_addrs a;

	fuzz_quiet_log();
	/* NUL bytes too: the lexer must refuse them, not stop at them. */
	if (dm_from_parse((const char *)data, size, &a) == DM_OK)
		check_addrs(&a);
	else if (a.domain != NULL || a.n != 0)
		fuzz_fail("an error with domains left");
	dm_from_addrs_clear(&a);
	if (dm_domain_normalize((const char *)data, size, d, sizeof(d)) ==
	    DM_OK)
		check_normal("normalised", d);
	return 0;
}
