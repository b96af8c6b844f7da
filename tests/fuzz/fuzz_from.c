/*
 * tests/fuzz/fuzz_from.c - libFuzzer target: a From field body through
 * dm_from_parse, and the same bytes through dm_domain_normalize. The
 * author domains decide which policy applies, so beyond memory errors
 * they must be what dm_from.h promises: normalised, distinct, bounded,
 * and normalising one again changes nothing. And the rule of issue 12: a
 * field that shows a reader "@" and a domain never yields "no author".
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
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
	if (a->n == 0 && a->nbad == 0 && a->ndeceptive == 0)
		fuzz_fail("no domain, no bad mailbox, nothing deceptive");
	if ((a->ndeceptive > 0) != (a->deceptive != NULL))
		fuzz_fail("%zu deceptive domains, reason %s", a->ndeceptive,
		    a->deceptive ? a->deceptive : "none");
	if ((a->ndeceptive > 0 || a->nbad > 0) && !a->malformed)
		fuzz_fail("a bad or deceptive mailbox in a clean field");
	for (i = 0; i < a->n; i++) {
		check_normal("author", a->domain[i]);
		for (j = 0; j < i; j++)
			if (strcmp(a->domain[i], a->domain[j]) == 0)
				fuzz_fail("'%s' twice", a->domain[i]);
	}
}

/*
 * Does the field show "@" and a letter or digit to a reader? Written
 * apart from the parser, as simply as a reader might: quoted strings
 * and comments hide what they hold only when every one of them closes.
 */
static bool
shows_at_domain(const unsigned char *p, size_t n)
{
	size_t i;
	int depth = 0, pass;
	bool q = false, lit = false, hide = true;

	/* Pass 0: do quotes and comments balance? Pass 1: look. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			bool open = q || depth || lit;

			if (hide && open && p[i] == '\\') {
				i++;
				continue;
			}
			if (hide && !q && !depth && (lit || p[i] == '['))
				lit = p[i] != ']';
			else if (hide && !q && !lit && p[i] == '(')
				depth++;
			else if (hide && !q && depth && p[i] == ')')
				depth--;
			else if (hide && !depth && !lit && p[i] == '"')
				q = !q;
			else if (pass == 1 && !q && !depth && p[i] == '@' &&
			    i + 1 < n && isalnum(p[i + 1]))
				return true;
			if (pass == 1 && lit && p[i] == '@' && i + 1 < n &&
			    isalnum(p[i + 1]))
				return true;
		}
		if (pass == 0 && (q || depth || i > n))
			hide = false;
		q = lit = false;
		depth = 0;
	}
	return false;
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
	if (a.n == 0 && a.ndeceptive == 0 && shows_at_domain(data, size))
		fuzz_fail("a field showing '@domain' yields no author");
	dm_from_addrs_clear(&a);
	if (dm_domain_normalize((const char *)data, size, d, sizeof(d)) ==
	    DM_OK)
		check_normal("normalised", d);
	return 0;
}
