/*
 * tests/fuzz/fuzz_record.c - libFuzzer target: one DMARC TXT record
 * (bytes as DNS hands them over, NULs included) through dm_record_parse.
 * Besides memory errors, a record that parses must keep the promises of
 * dm_record.h: values in range, fixed texts terminated, URIs valid.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dm_record.h"
#include "fuzz.h"

static void
check_uris(const char *tag, const dm_urilist *l)
{
	size_t i;

	if (l->n > 0 && l->v == NULL)
		fuzz_fail("%s: %zu URIs and no array", tag, l->n);
	for (i = 0; i < l->n; i++) {
		if (l->v[i].uri == NULL || strchr(l->v[i].uri, ':') == NULL)
			fuzz_fail("%s: URI %zu is no URI", tag, i);
		if (strpbrk(l->v[i].uri, " \t\r\n,!") != NULL)
			fuzz_fail("%s: URI '%s' kept a separator", tag,
			    l->v[i].uri);
	}
}

static void
check_record(const dm_record *r)
{
	if (r->p > DM_POLICY_REJECT || r->sp > DM_POLICY_REJECT ||
	    r->np > DM_POLICY_REJECT)
		fuzz_fail("policy out of range");
	if (r->pct < 0 || r->pct > 100)
		fuzz_fail("pct %d", r->pct);
	if (r->adkim > DM_ALIGN_STRICT || r->aspf > DM_ALIGN_STRICT ||
	    r->psd > DM_PSD_NO)
		fuzz_fail("adkim, aspf or psd out of range");
	if (memchr(r->fo, '\0', sizeof(r->fo)) == NULL ||
	    memchr(r->rf, '\0', sizeof(r->rf)) == NULL)
		fuzz_fail("fo or rf not terminated");
	if (r->fo[0] == '\0' || r->rf[0] == '\0')
		fuzz_fail("fo or rf empty");
	check_uris("rua", &r->rua);
	check_uris("ruf", &r->ruf);
	/* The policy names are what reports and A-R fields print. */
	if (dm_policy_str(r->p) == NULL || dm_align_mode_str(r->adkim) ==
	    NULL || dm_psd_str(r->psd) == NULL)
		fuzz_fail("no name for a parsed value");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dm_record *rec = NULL;
	char err[256] = "";
	dm_status st;
	bool dmarc;

	fuzz_quiet_log();
	dmarc = dm_record_is_dmarc((const char *)data, size);
	st = dm_record_parse((const char *)data, size, &rec, err,
	    sizeof(err));
	if (st == DM_OK) {
		if (rec == NULL || !dmarc)
			fuzz_fail("DM_OK for a record that is not DMARC");
		check_record(rec);
	} else if (rec != NULL)
		fuzz_fail("status %d and a record", (int)st);
	if (memchr(err, '\0', sizeof(err)) == NULL)
		fuzz_fail("err not terminated");
	dm_record_free(rec);
	return 0;
}
