/*
 * lib/row.c - a verdict to the canonical texts of its report rows (see
 * dm_row.h): which policy domains get a count, under which policy text
 * and period, in which row. Pure: no I/O, the clock comes in the ctx.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "dm_hex.h"
#include "dm_log.h"
#include "dm_row.h"

/* A growing string; out of memory ends the process (dm_log_oom). */
struct sb {
	char *p;
	size_t len, cap;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
	char *np;

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		if ((np = realloc(b->p, b->cap)) == NULL)
			dm_log_oom();
		b->p = np;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static bool
row_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != 0 && strchr(".@_+-", c) != NULL);
}

/* A value, escaped. */
static void
sb_val(struct sb *b, const char *s)
{
	char hex[4];

	for (; *s != '\0'; s++) {
		if (row_plain((unsigned char)*s))
			sb_add(b, s, 1);
		else {
			dm_hex_escape((unsigned char)*s, hex);
			sb_add(b, hex, 3);
		}
	}
}

/* "key=value;" with the value escaped. */
static void
sb_kv(struct sb *b, const char *key, const char *val)
{
	sb_str(b, key);
	sb_str(b, "=");
	sb_val(b, val != NULL ? val : "");
	sb_str(b, ";");
}

static void
sb_uris(struct sb *b, const char *key, const dm_urilist *l)
{
	char size[32];
	size_t i;

	sb_str(b, key);
	sb_str(b, "=");
	for (i = 0; i < l->n; i++) {
		if (i > 0)
			sb_str(b, ",");
		sb_val(b, l->v[i].uri);
		if (l->v[i].max_size > 0) {
			snprintf(size, sizeof(size), "!%" PRIu64,
			    l->v[i].max_size);
			sb_val(b, size);
		}
	}
	sb_str(b, ";");
}

static char *
row_policy(const dm_record *r, const char *method)
{
	struct sb b = { 0 };
	char pct[8];

	snprintf(pct, sizeof(pct), "%d", r->pct);
	sb_kv(&b, "p", dm_policy_str(r->p));
	sb_kv(&b, "sp", dm_policy_str(r->sp));
	sb_kv(&b, "np", dm_policy_str(r->np));
	sb_kv(&b, "pct", pct);
	sb_kv(&b, "t", r->testing ? "y" : "n");
	sb_kv(&b, "adkim", dm_align_mode_str(r->adkim));
	sb_kv(&b, "aspf", dm_align_mode_str(r->aspf));
	sb_kv(&b, "fo", r->fo);
	sb_kv(&b, "psd", dm_psd_str(r->psd));
	sb_uris(&b, "rua", &r->rua);
	sb_uris(&b, "ruf", &r->ruf);
	sb_kv(&b, "dm", method);
	return b.p;
}

/* r=type/comment,...  (the reasons of one author's evaluation) */
static void
row_reasons(struct sb *b, const dm_policy_verdict *pv)
{
	size_t i;

	sb_str(b, "r=");
	for (i = 0; i < pv->nreasons; i++) {
		if (i > 0)
			sb_str(b, ",");
		sb_val(b, dm_reason_type_str(pv->reasons[i].type));
		sb_str(b, "/");
		sb_val(b, pv->reasons[i].comment);
	}
	sb_str(b, ";");
}

/* ad=domain/selector/result,...  and the aligned DKIM outcome. */
static const char *
row_dkim(struct sb *b, const dm_verdict *v, const dm_author *a)
{
	const char *aligned = "fail";
	size_t i;

	sb_str(b, "ad=");
	for (i = 0; i < v->nsigs; i++) {
		if (i > 0)
			sb_str(b, ",");
		sb_val(b, v->sigs[i]->domain);
		sb_str(b, "/");
		sb_val(b, v->sigs[i]->selector);
		sb_str(b, "/");
		sb_val(b, dm_dkim_result_str(v->sigs[i]->result));
		if (v->sigs[i]->result == DM_DKIM_PASS && a->dkim_aligned &&
		    a->dkim_aligned[i])
			aligned = "pass";
	}
	sb_str(b, ";");
	return aligned;
}

static char *
row_text(const dm_verdict *v, const dm_author *a, const dm_row_ctx *c)
{
	struct sb b = { 0 };
	const char *dkim;
	bool spf_ok = v->spf.result == DM_SPF_PASS && a->spf_aligned;

	sb_kv(&b, "ip", c->ip);
	sb_kv(&b, "hf", a->domain);
	sb_kv(&b, "ef", v->spf.scope == DM_SPF_SCOPE_MFROM ?
	    v->spf.domain : "");
	if (c->envelope_to != NULL)
		sb_kv(&b, "et", c->envelope_to);
	sb_kv(&b, "disp", dm_disposition_str(a->pv.disposition));
	row_reasons(&b, &a->pv);
	dkim = row_dkim(&b, v, a);
	sb_kv(&b, "dkim", dkim);
	sb_kv(&b, "spf", spf_ok ? "pass" : "fail");
	sb_str(&b, "as=");
	sb_val(&b, v->spf.domain);
	sb_str(&b, "/");
	sb_val(&b, dm_spf_scope_str(v->spf.scope));
	sb_str(&b, "/");
	sb_val(&b, dm_spf_result_str(v->spf.result));
	sb_str(&b, ";");
	return b.p;
}

/* Largest divisor of 24 h, in whole hours, not above ri. */
static int64_t
row_ri_period(uint32_t ri)
{
	static const int hours[] = { 12, 8, 6, 4, 3, 2, 1 };
	size_t i;

	for (i = 0; i < sizeof(hours) / sizeof(hours[0]); i++)
		if ((uint32_t)hours[i] * 3600 <= ri)
			return hours[i] * 3600;
	return 3600;
}

void
dm_row_period(int64_t now, int64_t period, uint32_t ri, bool honor_ri,
    int64_t *begin, int64_t *end)
{
	if (period <= 0 || 86400 % period != 0)
		period = 86400;
	if (honor_ri && ri > 0 && ri < period)
		period = row_ri_period(ri);
	*begin = now - ((now % period) + period) % period;
	*end = *begin + period;
}

static bool
row_seen(const dm_update *u, size_t n, const char *domain)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(u[i].domain, domain) == 0)
			return true;
	return false;
}

dm_status
dm_row_build(const dm_verdict *v, const dm_row_ctx *c, dm_update **out,
    size_t *n)
{
	const dm_author *a;
	const dm_record *r;
	dm_update *u;
	size_t i;

	*out = NULL;
	*n = 0;
	/* A report row needs its source_ip: mail with none is not counted. */
	if (v->nauthors == 0 || c->ip == NULL || *c->ip == '\0')
		return DM_OK;
	if ((u = calloc(v->nauthors, sizeof(*u))) == NULL)
		return DM_NOMEM;
	for (i = 0; i < v->nauthors; i++) {
		a = &v->authors[i];
		r = a->disc.record;
		if (a->discovery != DM_OK || r == NULL || r->rua.n == 0)
			continue;	/* nobody asked for reports */
		if (row_seen(u, *n, a->disc.policy_domain))
			continue;	/* one count per policy domain */
		dm_row_period(c->now, c->period, r->ri, c->honor_ri,
		    &u[*n].begin, &u[*n].end);
		if ((u[*n].domain = strdup(a->disc.policy_domain)) == NULL)
			dm_log_oom();
		u[*n].policy = row_policy(r, c->method);
		u[*n].row = row_text(v, a, c);
		u[*n].count = 1;
		(*n)++;
	}
	if (*n == 0) {
		free(u);
		u = NULL;
	}
	*out = u;
	return DM_OK;
}

bool
dm_row_get(const char *text, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key), n;
	const char *p = text;

	while (!(strncmp(p, key, klen) == 0 && p[klen] == '=')) {
		if ((p = strchr(p, ';')) == NULL)
			return false;
		p++;
	}
	p += klen + 1;
	n = strcspn(p, ";");
	if (n >= len)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}
