/*
 * tests/unit/test_authres.c - the Authentication-Results text for
 * verdicts built by hand: results, properties, the dmarc comment, and
 * hostile values that must not escape their token or quoted-string.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "dm_authres.h"
#include "tap.h"

static dm_record rec_reject;

static void
make_sig(dm_dkim_sig *s, const char *d, const char *sel, dm_dkim_result r,
    const char *error)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->domain, sizeof(s->domain), "%s", d);
	snprintf(s->selector, sizeof(s->selector), "%s", sel);
	snprintf(s->error, sizeof(s->error), "%s", error);
	s->result = r;
}

static void
make_author(dm_author *a, const char *domain, dm_dmarc_result r,
    dm_disposition d, dm_record *rec)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->domain, sizeof(a->domain), "%s", domain);
	a->disc.record = rec;
	a->pv.result = r;
	a->pv.disposition = d;
	a->pv.requested = rec != NULL ? rec->p : DM_POLICY_NONE;
}

static const struct row {
	const char *name;
	const char *helo_or_from;
	dm_spf_scope scope;
	dm_spf_result spf;
	const char *selector;
	dm_dkim_result dkim;
	int nsigs;
	dm_dmarc_result dmarc;
	dm_disposition disp;
	bool record;
	const char *want;
} rows[] = {
	{ "pass with one signature", "example.com", DM_SPF_SCOPE_MFROM,
	  DM_SPF_PASS, "sel1", DM_DKIM_PASS, 1, DM_DMARC_PASS, DM_DISP_NONE,
	  true,
	  " mx.example.net;\n\tspf=pass smtp.mailfrom=example.com;\n"
	  "\tdkim=pass header.d=example.com header.s=sel1;\n"
	  "\tdmarc=pass (p=reject sp=quarantine dis=none) "
	  "header.from=example.com policy.dmarc=reject" },
	{ "fail, null sender uses helo, no signature", "mta.example.org",
	  DM_SPF_SCOPE_HELO, DM_SPF_FAIL, "", DM_DKIM_NONE, 0, DM_DMARC_FAIL,
	  DM_DISP_REJECT, true,
	  " mx.example.net;\n\tspf=fail smtp.helo=mta.example.org;\n"
	  "\tdkim=none;\n\tdmarc=fail (p=reject sp=quarantine dis=reject) "
	  "header.from=example.com policy.dmarc=reject" },
	{ "no record: no comment", "example.com", DM_SPF_SCOPE_MFROM,
	  DM_SPF_NONE, "", DM_DKIM_NONE, 0, DM_DMARC_NONE, DM_DISP_NONE,
	  false,
	  " mx.example.net;\n\tspf=none smtp.mailfrom=example.com;\n"
	  "\tdkim=none;\n\tdmarc=none header.from=example.com" },
	{ "failed signature carries the reason", "example.com",
	  DM_SPF_SCOPE_MFROM, DM_SPF_SOFTFAIL, "s", DM_DKIM_FAIL, 1,
	  DM_DMARC_FAIL, DM_DISP_REJECT, true,
	  " mx.example.net;\n\tspf=softfail smtp.mailfrom=example.com;\n"
	  "\tdkim=fail reason=\"body hash mismatch\" header.d=example.com "
	  "header.s=s;\n\tdmarc=fail (p=reject sp=quarantine dis=reject) "
	  "header.from=example.com policy.dmarc=reject" },
	{ "hostile selector is quoted, CRLF dropped", "example.com",
	  DM_SPF_SCOPE_MFROM, DM_SPF_PASS, "a;\r\nX-Evil: \"1\"",
	  DM_DKIM_PASS, 1, DM_DMARC_PASS, DM_DISP_NONE, true,
	  " mx.example.net;\n\tspf=pass smtp.mailfrom=example.com;\n"
	  "\tdkim=pass header.d=example.com header.s=\"a;X-Evil: \\\"1\\\"\";\n"
	  "\tdmarc=pass (p=reject sp=quarantine dis=none) "
	  "header.from=example.com policy.dmarc=reject" },
};

static void
run_row(const struct row *w)
{
	dm_dkim_sig sig;
	const dm_dkim_sig *sigs[1] = { &sig };
	dm_author author;
	dm_verdict v;
	char *buf;

	memset(&v, 0, sizeof(v));
	v.spf.result = w->spf;
	v.spf.scope = w->scope;
	snprintf(v.spf.domain, sizeof(v.spf.domain), "%s", w->helo_or_from);
	make_sig(&sig, "example.com", w->selector, w->dkim,
	    w->dkim == DM_DKIM_FAIL ? "body hash mismatch" : "");
	v.sigs = sigs;
	v.nsigs = (size_t)w->nsigs;
	make_author(&author, "example.com", w->dmarc, w->disp,
	    w->record ? &rec_reject : NULL);
	v.authors = &author;
	v.nauthors = 1;
	v.result = w->dmarc;
	v.disposition = w->disp;
	buf = dm_authres_format(&v, "mx.example.net", "\n", NULL);
	tap_is_str(buf, w->want, "%s: text", w->name);
	free(buf);
}

/* 300 signatures: every one listed, however long the field gets. */
static void
test_many_sigs(void)
{
	static dm_dkim_sig sig[300];
	const dm_dkim_sig *sigs[300];
	dm_verdict v;
	char *buf, *p, d[64];
	size_t i, n = 0;

	memset(&v, 0, sizeof(v));
	v.from_state = DM_FROM_MISSING;
	for (i = 0; i < 300; i++) {
		snprintf(d, sizeof(d), "signer%zu.example", i);
		make_sig(&sig[i], d, "s", DM_DKIM_PASS, "");
		sigs[i] = &sig[i];
	}
	v.sigs = sigs;
	v.nsigs = 300;
	buf = dm_authres_format(&v, "mx", "\n", NULL);
	for (p = buf; (p = strstr(p, "dkim=pass")) != NULL; p++)
		n++;
	tap_is_int((long)n, 300, "300 signatures: 300 dkim= results "
	    "(%zu bytes)", strlen(buf));
	tap_ok(strstr(buf, "header.d=signer299.example") != NULL,
	    "300 signatures: the last one is there");
	free(buf);
}

static void
test_special(void)
{
	dm_author a[2];
	dm_verdict v;
	char *buf;
	size_t len;

	memset(&v, 0, sizeof(v));
	v.from_state = DM_FROM_MISSING;
	buf = dm_authres_format(&v, "mx.example.net", "\r\n", &len);
	tap_is_str(buf, " mx.example.net;\r\n\tspf=none;\r\n\tdkim=none;\r\n"
	    "\tdmarc=none (no From)", "no From field, CRLF folding");
	tap_ok(len == strlen(buf), "the length is the string's");
	free(buf);

	make_author(&a[0], "good.example", DM_DMARC_NONE, DM_DISP_NONE, NULL);
	make_author(&a[1], "bank.example", DM_DMARC_FAIL, DM_DISP_REJECT,
	    &rec_reject);
	v.authors = a;
	v.nauthors = 2;
	v.decisive = 1;
	v.from_state = DM_FROM_SEVERAL_FIELDS;
	buf = dm_authres_format(&v, "mx", "\n", NULL);
	tap_ok(strstr(buf, "dkim=none;\n\tdmarc=fail (p=reject sp=quarantine "
	    "dis=reject) header.from=bank.example policy.dmarc=reject;\n"
	    "\tdmarc=none header.from=good.example") != NULL,
	    "several authors: the decisive one first, then each other");
	free(buf);
	test_many_sigs();
}

static const struct servid_row {
	const char *value;
	dm_status want;
	const char *id;
} servid_rows[] = {
	{ " mx.example.net; spf=pass", DM_OK, "mx.example.net" },
	{ " MX.Example.NET 1; none", DM_OK, "mx.example.net" },
	{ "mx.example.net;", DM_OK, "mx.example.net" },
	{ " (comment (nested)) mx.example.net; x", DM_OK, "mx.example.net" },
	{ "\r\n\tmx.example.net\r\n\t; dkim=pass", DM_OK, "mx.example.net" },
	{ " \"mx.example.net\"; none", DM_OK, "mx.example.net" },
	{ " \"mx\\\"x\"; none", DM_OK, "mx\"x" },
	{ " ;", DM_PERMFAIL, "" },
	{ "", DM_PERMFAIL, "" },
	{ " (unclosed comment", DM_PERMFAIL, "" },
	{ " mx.example.netTOOLONGFORTHEBUFFER; none", DM_PERMFAIL, NULL },
};

static void
test_servid(void)
{
	char out[24];
	size_t i;
	dm_status st;

	for (i = 0; i < sizeof(servid_rows) / sizeof(servid_rows[0]); i++) {
		const struct servid_row *w = &servid_rows[i];

		st = dm_authres_servid(w->value, out, sizeof(out));
		tap_is_int(st, w->want, "servid of '%s': status", w->value);
		if (w->id != NULL && st == DM_OK)
			tap_is_str(out, w->id, "servid of '%s'", w->value);
	}
}

static const struct spf_row {
	const char *value;
	dm_status want;
	dm_spf_result result;
	dm_spf_scope scope;
	const char *domain;
} spf_rows[] = {
	{ " mx.example; spf=pass smtp.mailfrom=a@One.Example", DM_OK,
	    DM_SPF_PASS, DM_SPF_SCOPE_MFROM, "one.example" },
	{ " mx.example; dkim=pass header.d=x.example;\r\n\tspf=softfail "
	    "(not quite) smtp.mailfrom=two.example", DM_OK, DM_SPF_SOFTFAIL,
	    DM_SPF_SCOPE_MFROM, "two.example" },
	{ " mx.example; spf = fail smtp.helo = mta.three.example", DM_OK,
	    DM_SPF_FAIL, DM_SPF_SCOPE_HELO, "mta.three.example" },
	{ " mx.example; spf=pass smtp.mailfrom=\"a@four.example\"", DM_OK,
	    DM_SPF_PASS, DM_SPF_SCOPE_MFROM, "four.example" },
	{ " mx.example; spf=temperror smtp.mailfrom=a@five.example", DM_OK,
	    DM_SPF_TEMPERROR, DM_SPF_SCOPE_MFROM, "five.example" },
	{ " mx.example (spf=pass smtp.mailfrom=a@evil.example); none",
	    DM_NOTFOUND, DM_SPF_NONE, 0, NULL },
	{ " mx.example; dkim=pass (spf=pass smtp.mailfrom=a@evil.example)",
	    DM_NOTFOUND, DM_SPF_NONE, 0, NULL },
	{ " mx.example", DM_NOTFOUND, DM_SPF_NONE, 0, NULL },
	{ " mx.example; spf=excellent smtp.mailfrom=a@six.example",
	    DM_PERMFAIL, DM_SPF_NONE, 0, NULL },
	{ " mx.example; spf=pass", DM_PERMFAIL, DM_SPF_NONE, 0, NULL },
	{ " mx.example; spf=pass smtp.mailfrom=a@bad..example", DM_PERMFAIL,
	    DM_SPF_NONE, 0, NULL },
	/* Issue 12: properties are parsed, never searched for. */
	{ " relay.example; spf=pass smtp.mailfrom=\"ceo@bank.example\"@"
	    "evil.example", DM_OK, DM_SPF_PASS, DM_SPF_SCOPE_MFROM,
	    "evil.example" },
	{ " relay.example; spf=pass smtp.mailfrom=\"a;b@bank.example\"@"
	    "evil.example", DM_OK, DM_SPF_PASS, DM_SPF_SCOPE_MFROM,
	    "evil.example" },
	{ " relay.example; spf=pass reason=\"ok smtp.mailfrom=bank.example\" "
	    "smtp.mailfrom=evil.example", DM_OK, DM_SPF_PASS,
	    DM_SPF_SCOPE_MFROM, "evil.example" },
	{ " relay.example; spf=pass reason=\"smtp.mailfrom=bank.example\"",
	    DM_PERMFAIL, DM_SPF_NONE, 0, NULL },
	{ " relay.example; dkim=pass reason=\"; spf=pass smtp.mailfrom="
	    "bank.example\" header.d=evil.example", DM_NOTFOUND, DM_SPF_NONE,
	    0, NULL },
	{ " relay.example; spf=pass x-smtp.mailfrom=bank.example "
	    "smtp.mailfrom=evil.example", DM_OK, DM_SPF_PASS,
	    DM_SPF_SCOPE_MFROM, "evil.example" },
	{ " relay.example; spf=pass (smtp.mailfrom=bank.example) "
	    "smtp.mailfrom=evil.example", DM_OK, DM_SPF_PASS,
	    DM_SPF_SCOPE_MFROM, "evil.example" },
	{ " relay.example; spf=pass smtp.mailfrom=a@bank.example\"@evil."
	    "example\"", DM_PERMFAIL, DM_SPF_NONE, 0, NULL },
	{ " relay.example; spf=none smtp.mailfrom=<>", DM_PERMFAIL,
	    DM_SPF_NONE, 0, NULL },
	{ " relay.example; spf=pass smtp.mailfrom=a@one.example "
	    "smtp.mailfrom=b@bank.example", DM_PERMFAIL, DM_SPF_NONE, 0,
	    NULL },
	{ " relay.example; spf=pass smtp.mailfrom=\"a@bank.example",
	    DM_PERMFAIL, DM_SPF_NONE, 0, NULL },
	{ " relay.example; spf=pass smtp . mailfrom = a@one.example", DM_OK,
	    DM_SPF_PASS, DM_SPF_SCOPE_MFROM, "one.example" },
	{ " relay.example 1; spf/1=fail smtp.mailfrom=a@one.example", DM_OK,
	    DM_SPF_FAIL, DM_SPF_SCOPE_MFROM, "one.example" },
	{ " relay.example; spf=pass smtp.mailfrom=a@one.example; spf=fail "
	    "smtp.mailfrom=b@bank.example", DM_OK, DM_SPF_PASS,
	    DM_SPF_SCOPE_MFROM, "one.example" },
	{ " relay.example; spf=pass smtp.helo=h.one.example smtp.mailfrom="
	    "a@two.example", DM_OK, DM_SPF_PASS, DM_SPF_SCOPE_MFROM,
	    "two.example" },
	{ " relay.example; none", DM_NOTFOUND, DM_SPF_NONE, 0, NULL },
	{ " relay.example; spf=pass smtp.mailfrom=a@one.example junk",
	    DM_PERMFAIL, DM_SPF_NONE, 0, NULL },
	{ " relay.example spf=pass smtp.mailfrom=a@one.example", DM_PERMFAIL,
	    DM_SPF_NONE, 0, NULL },
	{ " relay.example; spf=pass smtp.mailfrom=a@one.example (open",
	    DM_PERMFAIL, DM_SPF_NONE, 0, NULL },
};

static void
test_read_spf(void)
{
	dm_spf_outcome o;
	dm_status st;
	size_t i;

	for (i = 0; i < sizeof(spf_rows) / sizeof(spf_rows[0]); i++) {
		const struct spf_row *w = &spf_rows[i];

		memset(&o, 0, sizeof(o));
		st = dm_authres_read_spf(w->value, &o);
		tap_is_int(st, w->want, "read spf of '%s': status", w->value);
		if (w->want != DM_OK)
			continue;
		tap_is_int(o.result, w->result, "read spf: result");
		tap_is_int(o.scope, w->scope, "read spf: scope");
		tap_is_str(o.domain, w->domain, "read spf: domain");
	}
}

/*
 * Quoted escapes ("\\x") are copied two bytes at a time: fields ending
 * on every byte around the 4 KB copy must be refused (too long) without a
 * write past it (fuzz_authres found one; ASan builds see it).
 */
static void
test_read_spf_long(void)
{
	/* two heads: the escapes start at both parities of the offset */
	static const char *const heads[] = {
		" mx.example; spf=pass smtp.mailfrom=\"",
		" mx.example; spf=pass smtp.mailfrom=\"x",
	};
	char value[4200];
	dm_spf_outcome o;
	size_t h, len, n, bad = 0;

	for (h = 0; h < 2; h++)
		for (len = 4080; len < 4110; len++) {
			n = strlcpy(value, heads[h], sizeof(value));
			for (; n < len; n++)
				value[n] = '\\';
			value[n] = '\0';
			if (dm_authres_read_spf(value, &o) != DM_PERMFAIL)
				bad++;
		}
	tap_is_int((long)bad, 0, "4 KB of quoted escapes: refused, every "
	    "length");
}

int
main(void)
{
	size_t i;

	rec_reject.p = DM_POLICY_REJECT;
	rec_reject.sp = DM_POLICY_QUARANTINE;
	rec_reject.np = DM_POLICY_QUARANTINE;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i]);
	test_special();
	test_servid();
	test_read_spf();
	test_read_spf_long();
	return tap_done();
}
