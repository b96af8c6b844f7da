/*
 * tests/unit/test_row.c - report rows from verdicts: which authors are
 * counted, the canonical policy and row texts, escaping that no value
 * can break, and the periods (days, divisors, ri= on hour boundaries).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "dm_hex.h"
#include "dm_record.h"
#include "dm_row.h"
#include "tap.h"

static const struct period_row {
	const char *name;
	int64_t now, period;
	uint32_t ri;
	bool honor;
	int64_t begin, end;
} period_rows[] = {
	{ "a UTC day", 86400 * 3 + 5, 86400, 86400, true, 86400 * 3,
	    86400 * 4 },
	{ "midnight starts a day", 86400 * 3, 86400, 0, true, 86400 * 3,
	    86400 * 4 },
	{ "6 h periods", 86400 + 7 * 3600, 21600, 86400, true,
	    86400 + 6 * 3600, 86400 + 12 * 3600 },
	{ "a period that does not divide the day is a day", 100, 7000, 0,
	    false, 0, 86400 },
	{ "ri=3600 honoured", 86400 + 7 * 3600 + 5, 86400, 3600, true,
	    86400 + 7 * 3600, 86400 + 8 * 3600 },
	{ "ri=3600 not honoured", 86400 + 7 * 3600 + 5, 86400, 3600, false,
	    86400, 2 * 86400 },
	{ "ri=5h becomes 4h", 86400 + 5 * 3600, 86400, 5 * 3600, true,
	    86400 + 4 * 3600, 86400 + 8 * 3600 },
	{ "ri under an hour becomes an hour", 86400 + 30, 86400, 60, true,
	    86400, 86400 + 3600 },
	{ "ri above the period: the period", 86400 + 30, 21600, 86400 * 7,
	    true, 86400, 86400 + 21600 },
	{ "before 1970", -5, 86400, 0, true, -86400, 0 },
};

static void
test_periods(void)
{
	int64_t b, e;
	size_t i;

	for (i = 0; i < sizeof(period_rows) / sizeof(period_rows[0]); i++) {
		const struct period_row *r = &period_rows[i];

		dm_row_period(r->now, r->period, r->ri, r->honor, &b, &e);
		tap_is_int((long)b, (long)r->begin, "%s: begin", r->name);
		tap_is_int((long)e, (long)r->end, "%s: end", r->name);
	}
}

static dm_record *
record(const char *txt)
{
	dm_record *r = NULL;
	char err[256];

	if (dm_record_parse(txt, strlen(txt), &r, err, sizeof(err)) != DM_OK)
		tap_bail("record %s: %s", txt, err);
	return r;
}

/* A verdict of two authors, one with a rua, and two signatures. */
static void
test_build(void)
{
	dm_dkim_sig s1 = { "a.example", "s;1=x", "rsa-sha256", DM_DKIM_PASS,
	    "" };
	dm_dkim_sig s2 = { "evil.example", "k", "rsa-sha256", DM_DKIM_FAIL,
	    "bad" };
	const dm_dkim_sig *sigs[] = { &s1, &s2 };
	bool al[2] = { true, false }, al2[2] = { false, false };
	dm_author au[3];
	dm_verdict v;
	dm_row_ctx c = { "192.0.2.1", "rcpt.example", 86400 + 60, 86400, true,
	    "treewalk" };
	dm_update *u = NULL;
	size_t n = 99;
	char val[512], part[256];

	memset(&v, 0, sizeof(v));
	memset(au, 0, sizeof(au));
	strlcpy(au[0].domain, "a.example", sizeof(au[0].domain));
	strlcpy(au[0].disc.policy_domain, "a.example",
	    sizeof(au[0].disc.policy_domain));
	au[0].disc.record = record("v=DMARC1; p=reject; pct=50; "
	    "rua=mailto:r@a.example!10m,mailto:x@b.example; ri=3600");
	au[0].dkim_aligned = al;
	au[0].pv.disposition = DM_DISP_QUARANTINE;
	au[0].pv.nreasons = 1;
	au[0].pv.reasons[0].type = DM_REASON_SAMPLED_OUT;
	strlcpy(au[0].pv.reasons[0].comment, "pct; 50 % x",
	    sizeof(au[0].pv.reasons[0].comment));
	strlcpy(au[1].domain, "norua.example", sizeof(au[1].domain));
	au[1].disc.record = record("v=DMARC1; p=none");
	au[1].dkim_aligned = al2;
	/* a second author under the same policy domain: not counted again */
	strlcpy(au[2].domain, "sub.a.example", sizeof(au[2].domain));
	strlcpy(au[2].disc.policy_domain, "a.example",
	    sizeof(au[2].disc.policy_domain));
	au[2].disc.record = au[0].disc.record;
	au[2].dkim_aligned = al2;
	v.authors = au;
	v.nauthors = 3;
	v.sigs = sigs;
	v.nsigs = 2;
	v.spf.result = DM_SPF_PASS;
	v.spf.scope = DM_SPF_SCOPE_MFROM;
	strlcpy(v.spf.domain, "bounce.a.example", sizeof(v.spf.domain));

	c.ip = "";
	tap_is_int(dm_row_build(&v, &c, &u, &n), DM_OK, "build without an ip");
	tap_ok(n == 0 && u == NULL, "no source address: nothing counted");
	c.ip = "192.0.2.1";
	tap_is_int(dm_row_build(&v, &c, &u, &n), DM_OK, "build");
	tap_is_int((long)n, 1, "once per policy domain with a rua");
	if (n != 1)
		goto done;
	tap_is_str(u[0].domain, "a.example", "policy domain");
	tap_is_int((long)u[0].begin, 86400, "ri=3600: an hour period begins");
	tap_is_int((long)u[0].end, 86400 + 3600, "... and ends");
	tap_is_str(u[0].policy, "p=reject;sp=reject;np=reject;pct=50;t=n;"
	    "adkim=r;aspf=r;fo=0;psd=u;rua=mailto%3Ar@a.example%2110485760,"
	    "mailto%3Ax@b.example;ruf=;dm=treewalk;", "policy text");
	tap_is_str(u[0].row, "ip=192.0.2.1;hf=a.example;ef=bounce.a.example;"
	    "et=rcpt.example;disp=quarantine;r=sampled_out/pct%3B%2050%20%25"
	    "%20x;ad=a.example/s%3B1%3Dx/pass,evil.example/k/fail;dkim=pass;"
	    "spf=fail;as=bounce.a.example/mfrom/pass;", "row text");
	tap_ok(dm_row_get(u[0].row, "r", val, sizeof(val)), "get r");
	tap_ok(dm_hex_decode(val, strcspn(val, "/"), part, sizeof(part)) &&
	    strcmp(part, "sampled_out") == 0, "reason type");
	tap_ok(dm_hex_decode(strchr(val, '/') + 1,
	    strlen(strchr(val, '/') + 1), part, sizeof(part)) &&
	    strcmp(part, "pct; 50 % x") == 0, "reason comment round trip");
	tap_ok(dm_row_get(u[0].row, "spf", val, sizeof(val)) &&
	    strcmp(val, "fail") == 0, "spf key is not the as key");
	tap_ok(!dm_row_get(u[0].row, "nokey", val, sizeof(val)), "absent key");
	tap_ok(!dm_row_get(u[0].row, "ad", val, 4), "too small a buffer");
	dm_update_clear(&u[0]);
done:
	free(u);
	dm_record_free(au[0].disc.record);
	dm_record_free(au[1].disc.record);
}

static void
test_nothing(void)
{
	dm_verdict v;
	dm_row_ctx c = { "192.0.2.1", NULL, 0, 86400, false, "psl" };
	dm_update *u = (dm_update *)&c;
	size_t n = 5;

	memset(&v, 0, sizeof(v));
	tap_is_int(dm_row_build(&v, &c, &u, &n), DM_OK, "no author: ok");
	tap_ok(n == 0 && u == NULL, "no author: nothing counted");
}

int
main(void)
{
	test_periods();
	test_build();
	test_nothing();
	return tap_done();
}
