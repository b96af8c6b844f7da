/*
 * tests/fuzz/fuzz_urilist.c - libFuzzer target: a rua=/ruf= value
 * through dm_urilist_parse. Every URI kept must read back alone as
 * itself, and "URI!size" (the size in bytes) as the same limit: the
 * report generator reparses what the record parser kept.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_record.h"
#include "fuzz.h"

static void
check_reparse(const dm_uri *u)
{
	dm_urilist l;
	char *s;
	size_t n = strlen(u->uri) + 24;

	if ((s = malloc(n)) == NULL)
		fuzz_fail("out of memory");
	if (u->max_size > 0)
		snprintf(s, n, "%s!%" PRIu64, u->uri, u->max_size);
	else
		snprintf(s, n, "%s", u->uri);
	if (dm_urilist_parse(s, strlen(s), &l) != DM_OK)
		fuzz_fail("'%s' not parsed again", s);
	if (l.n != 1 || strcmp(l.v[0].uri, u->uri) != 0 ||
	    l.v[0].max_size != u->max_size)
		fuzz_fail("'%s' read back as %zu URIs", s, l.n);
	dm_urilist_clear(&l);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dm_urilist l;
	size_t i;

	fuzz_quiet_log();
	if (dm_urilist_parse((const char *)data, size, &l) != DM_OK)
		return 0;
	for (i = 0; i < l.n; i++) {
		if (l.v[i].uri == NULL || l.v[i].uri[0] == '\0')
			fuzz_fail("URI %zu empty", i);
		check_reparse(&l.v[i]);
	}
	dm_urilist_clear(&l);
	return 0;
}
