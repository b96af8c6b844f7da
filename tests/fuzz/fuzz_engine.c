/*
 * tests/fuzz/fuzz_engine.c - libFuzzer target: a whole message through
 * the evaluation engine, as the milter and dmarc-check run it, against a
 * fixed zone served by the resolver from local-data (no network: the
 * root is refused). Then everything we make of the verdict: our
 * Authentication-Results field (must stay one field), the SMTP reply,
 * and the report rows, written as report XML (must parse and validate).
 *
 * Input: an envelope line, then the message (LF or CRLF):
 *   "IP HELO MAIL-FROM [RCPT-DOMAIN [psl]]\n"
 * Missing fields get defaults; "psl" picks the engine configured with
 * OrgDomainMethod psl and MultipleFrom first instead of treewalk and
 * strictest.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm_action.h"
#include "dm_authres.h"
#include "dm_config.h"
#include "dm_engine.h"
#include "dm_msgstream.h"
#include "dm_row.h"
#include "fuzz.h"
#include "fuzzxml.h"

#define RSA1 "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtsijD6nVRPe78JK6jx" \
	"KkRtmeV243rgczm7OxufEs/lHUtbwX05R77kgcf/P4KA2N15J9cc3W8zaEVHqB" \
	"PmkQwMmmeBXtbyLS1gsjUhFIwMMP+FSbX9sp4Mzsy9VxjkOdYSvekwuACOmOdo" \
	"25GlRs15hu"
#define RSA2 "KwDu0xlm5ooijJAxC5Xi11ARzIawMVStPWV4K3XxEj9RoNPZaigGFXhiHJr1IM" \
	"o3QSl8IGfon3hpTXzFAgPjGDJmxzN5s0eX4LzfNPdX+hhnz8oih53vGtghVRAB" \
	"k7dJT1RLc4HokHh02W6Xkk6W0F9TRIyNNMZAaBOD26WyRfBo8SSAP8/L8nuWey" \
	"kmiwIDAQAB"
#define ED "aNaOiWxpiS/8acCInsJm2Ccjw/8XYdx46d+yR0DhiMo="
#define RR(name, type, data) "local-data: '" name " 300 IN " type " " \
	data "'\n"
#define TXT(name, text) RR(name, "TXT", "\"" text "\"")

/*
 * The zone: the keys of tests/fixtures/keys; policies of every kind;
 * SPF with include, redirect, macros and a loop; a CNAME loop; a record
 * of a few KB; a zone that refuses (temporary errors).
 */
static const char zone[] =
	"server:\n"
	"verbosity: 0\n"
	"do-not-query-localhost: no\n"
	"module-config: \"iterator\"\n"
	"local-zone: \".\" refuse\n"
	"local-zone: \"example.\" static\n"
	"local-zone: \"temp.example.\" refuse\n"
	RR("example.", "SOA", "ns.example. h.example. 1 3600 600 86400 300")
	RR("example.", "NS", "ns.example.")
	RR("ns.example.", "A", "192.0.2.53")
	TXT("_dmarc.a.example.", "v=DMARC1; p=reject; rua=mailto:d@a.example")
	TXT("a.example.", "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all")
	RR("a.example.", "A", "192.0.2.10")
	RR("a.example.", "MX", "10 mx.a.example.")
	RR("mx.a.example.", "A", "192.0.2.11")
	RR("sub.a.example.", "A", "192.0.2.12")
	RR("s1._domainkey.a.example.", "TXT",
	    "\"v=DKIM1; k=rsa; p=" RSA1 "\" \"" RSA2 "\"")
	TXT("ed._domainkey.a.example.", "v=DKIM1; k=ed25519; p=" ED)
	TXT("_dmarc.b.example.", "v=DMARC1; p=quarantine; sp=none; np=reject; "
	    "pct=50; adkim=s; aspf=s; fo=1:d; ri=3600; "
	    "rua=mailto:r@b.example,mailto:x@third.example!1m; "
	    "ruf=mailto:f@b.example")
	TXT("b.example.", "v=spf1 include:a.example a mx ptr "
	    "exists:%{i}.%{l}._spf.b.example ~all")
	RR("b.example.", "A", "192.0.2.20")
	RR("s1._domainkey.b.example.", "TXT",
	    "\"v=DKIM1; k=rsa; p=" RSA1 "\" \"" RSA2 "\"")
	TXT("_dmarc.c.example.", "v=DMARC1; p=none; t=y; psd=n; "
	    "rua=mailto:c@c.example")
	TXT("c.example.", "v=spf1 redirect=a.example")
	TXT("_dmarc.two.example.", "v=DMARC1; p=none")
	TXT("_dmarc.two.example.", "v=DMARC1; p=reject")
	TXT("_dmarc.psd.example.", "v=DMARC1; p=reject; psd=y; "
	    "rua=mailto:p@psd.example")
	RR("org.psd.example.", "A", "192.0.2.30")
	TXT("_dmarc.list.example.", "v=DMARC1; p=reject; "
	    "rua=mailto:l@list.example")
	TXT("list.example.", "v=spf1 -all")
	TXT("loop.example.", "v=spf1 include:loop.example -all")
	RR("cname1.example.", "CNAME", "cname2.example.")
	RR("cname2.example.", "CNAME", "cname1.example.")
	RR("_dmarc.alias.example.", "CNAME", "_dmarc.a.example.")
	RR("_dmarc.big.example.", "TXT", "\"v=DMARC1; p=reject; rua="
	    "mailto:a0@big.example,mailto:a1@big.example,mailto:a2@big.example"
	    ",mailto:a3@big.example,mailto:a4@big.example\" \""
	    ",mailto:a5@big.example,mailto:a6@big.example,mailto:a7@big.example"
	    ",mailto:a8@big.example,mailto:a9@big.example; ruf=mailto:f@big\"")
	"forward-zone:\n"
	"name: \".\"\n"
	"forward-addr: 127.0.0.1@1\n";

static dm_engine *engines[2];

static uint32_t
fixed_random(void *arg)
{
	(void)arg;
	return 0x7fffffffu;	/* pct=50: on the edge of the sample */
}

static dm_engine *
engine_make(const char *dnsconfig, bool psl)
{
	char err[512];
	dm_config *c = dm_config_new();
	dm_engine *e;

	const char *const set[][2] = {
		{ "DNSConfig", dnsconfig }, { "DNSTimeout", "1" },
		{ "AuthservID", "mx.fuzz.example" },
		{ "TrustedAuthservIDs", "relay.example" },
		{ "TrustedForwarders", "198.51.100.0/24" },
		{ "OrgDomainMethod", psl ? "psl" : "treewalk" },
		{ "MultipleFrom", psl ? "first" : "strictest" },
	};
	size_t i;

	if (c == NULL)
		fuzz_fail("out of memory");
	for (i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		if (dm_config_set(c, set[i][0], set[i][1], err, sizeof(err)) !=
		    DM_OK)
			fuzz_fail("config: %s", err);
	if ((e = dm_engine_new(c, err, sizeof(err))) == NULL)
		fuzz_fail("engine: %s", err);
	dm_config_unref(c);
	dm_engine_set_random(e, fixed_random, NULL);
	return e;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[64];
	int fd;

	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	fuzz_xml_init();
	if ((fd = fuzz_memfile(zone, sizeof(zone) - 1, path, sizeof(path))) <
	    0)
		fuzz_fail("memfd: cannot write the zone");
	engines[0] = engine_make(path, false);
	engines[1] = engine_make(path, true);
	close(fd);	/* read by now (dm_resolver_new) */
	return 0;
}

struct envelope {
	const char *ip, *helo, *mail_from, *rcpt_domain;
	bool psl;
};

/* The first line (a C string) into env; strings point into it. */
static void
read_envelope(char *buf, struct envelope *env)
{
	char *f[5] = { NULL }, *save = NULL;
	int i;

	f[0] = strtok_r(buf, " ", &save);
	for (i = 1; i < 5 && f[i - 1] != NULL; i++)
		f[i] = strtok_r(NULL, " ", &save);
	env->ip = f[0] != NULL ? f[0] : "192.0.2.10";
	env->helo = f[1] != NULL ? f[1] : "mx.a.example";
	env->mail_from = f[2] != NULL ? f[2] : "<>";
	env->rcpt_domain = f[3];
	env->psl = f[4] != NULL && strcmp(f[4], "psl") == 0;
}

static void
check_verdict(const dm_verdict *v)
{
	size_t i;

	if (v->disposition > DM_DISP_REJECT || v->result > DM_DMARC_PERMERROR ||
	    v->nerrors > sizeof(v->errors) / sizeof(v->errors[0]))
		fuzz_fail("verdict out of range");
	if (v->nauthors > 0 && (v->authors == NULL ||
	    v->decisive >= v->nauthors))
		fuzz_fail("decisive author %zu of %zu", v->decisive,
		    v->nauthors);
	for (i = 0; i < v->nauthors; i++)
		fuzz_check_domain("author", v->authors[i].domain);
	for (i = 0; i < v->nsigs; i++)
		if (v->sigs[i]->domain[0] != '\0')
			fuzz_check_domain("DKIM d=", v->sigs[i]->domain);
	for (i = 0; i < v->nerrors; i++)
		if (memchr(v->errors[i], '\0', sizeof(v->errors[i])) == NULL)
			fuzz_fail("error text not terminated");
}

/* The A-R field, the SMTP reply and the report rows of a verdict. */
static void
check_outputs(dm_engine *e, const dm_verdict *v, const struct envelope *env)
{
	dm_row_ctx rc = { env->ip, env->rcpt_domain, 1704070800, 86400,
	    true, env->psl ? "psl" : "treewalk" };
	rpt_meta m = { "Fuzz", "dmarc@fuzz.example", NULL, "fuzz.1", NULL,
	    0, 0, NULL, NULL, RPT_RFC7489 };
	char *field;
	dm_update *u;
	dm_action a;
	size_t i, n;

	field = dm_authres_format(v, "mx.fuzz.example", "\r\n", NULL);
	fuzz_check_field(field);
	free(field);
	dm_action_decide(dm_engine_config(e), v, &a);
	fuzz_check_reply(&a);
	if (dm_row_build(v, &rc, &u, &n) != DM_OK)
		fuzz_fail("dm_row_build: out of memory");
	for (i = 0; i < n; i++) {
		rpt_row r = { u[i].row, u[i].count };

		fuzz_check_domain("policy domain", u[i].domain);
		m.domain = u[i].domain;
		m.policy = u[i].policy;
		m.begin = u[i].begin;
		m.end = u[i].end;
		fuzz_xml_report(&m, &r, 1);
		dm_update_clear(&u[i]);
	}
	free(u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t elen = nl != NULL ? (size_t)(nl - data) : size;
	char *buf = fuzz_cstr(data, elen), err[256];
	const dm_verdict *v;
	struct envelope env;
	dm_engine *e;
	dm_msg *m;
	int fd;

	/* The message keeps its NUL bytes: only the envelope is a string. */
	read_envelope(buf, &env);
	e = engines[env.psl];
	if (dm_engine_ignored_host(e, env.ip) ||
	    (m = dm_msg_new(e, "FUZZ")) == NULL)
		goto out;
	if (dm_msg_client(m, env.ip, env.helo) != DM_OK ||
	    dm_msg_mail_from(m, env.mail_from) != DM_OK)
		goto done;
	elen += elen < size;
	if ((fd = fuzz_memfile(data + elen, size - elen, NULL, 0)) < 0)
		fuzz_fail("memfd: cannot write the message");
	if (dm_msg_feed_stream(m, fd, err, sizeof(err)) == DM_OK &&
	    dm_msg_eom(m, &v) == DM_OK) {
		check_verdict(v);
		check_outputs(e, v, &env);
	}
	close(fd);
done:
	dm_msg_free(m);
out:
	free(buf);
	return 0;
}
