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

#include "dm_buf.h"
#include "dm_hex.h"
#include "dm_log.h"
#include "dm_row.h"

static bool
row_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != 0 && strchr(".@_+-", c) != NULL);
}

/* A value, escaped. */
static void
row_val(dm_buf *b, const char *s)
{
	char hex[4];

	for (; *s != '\0'; s++) {
		if (row_plain((unsigned char)*s))
			dm_buf_add(b, s, 1);
		else {
			dm_hex_escape((unsigned char)*s, hex);
			dm_buf_add(b, hex, 3);
		}
	}
}

/* "key=value;" with the value escaped. */
static void
row_kv(dm_buf *b, const char *key, const char *val)
{
	dm_buf_adds(b, key);
	dm_buf_adds(b, "=");
	row_val(b, val != NULL ? val : "");
	dm_buf_adds(b, ";");
}

static void
row_uris(dm_buf *b, const char *key, const dm_urilist *l)
{
	char size[32];
	size_t i;

	dm_buf_adds(b, key);
	dm_buf_adds(b, "=");
	for (i = 0; i < l->n; i++) {
		if (i > 0)
			dm_buf_adds(b, ",");
		row_val(b, l->v[i].uri);
		if (l->v[i].max_size > 0) {
			snprintf(size, sizeof(size), "!%" PRIu64,
			    l->v[i].max_size);
			row_val(b, size);
		}
	}
	dm_buf_adds(b, ";");
}

static char *
row_policy(const dm_record *r, const char *method)
{
	dm_buf b = DM_BUF_INIT;
	char pct[8];

	snprintf(pct, sizeof(pct), "%d", r->pct);
	row_kv(&b, "p", dm_policy_str(r->p));
	row_kv(&b, "sp", dm_policy_str(r->sp));
	row_kv(&b, "np", dm_policy_str(r->np));
	row_kv(&b, "pct", pct);
	row_kv(&b, "t", r->testing ? "y" : "n");
	row_kv(&b, "adkim", dm_align_mode_str(r->adkim));
	row_kv(&b, "aspf", dm_align_mode_str(r->aspf));
	row_kv(&b, "fo", r->fo);
	row_kv(&b, "psd", dm_psd_str(r->psd));
	row_uris(&b, "rua", &r->rua);
	row_uris(&b, "ruf", &r->ruf);
	row_kv(&b, "dm", method);
	return dm_buf_take(&b, NULL);
}

/* r=type/comment,...  (the reasons of one author's evaluation) */
static void
row_reasons(dm_buf *b, const dm_policy_verdict *pv)
{
	size_t i;

	dm_buf_adds(b, "r=");
	for (i = 0; i < pv->nreasons; i++) {
		if (i > 0)
			dm_buf_adds(b, ",");
		row_val(b, dm_reason_type_str(pv->reasons[i].type));
		dm_buf_adds(b, "/");
		row_val(b, pv->reasons[i].comment);
	}
	dm_buf_adds(b, ";");
}

/* ad=domain/selector/result,...  and the aligned DKIM outcome. */
static const char *
row_dkim(dm_buf *b, const dm_verdict *v, const dm_author *a)
{
	const char *aligned = "fail";
	size_t i;

	dm_buf_adds(b, "ad=");
	for (i = 0; i < v->nsigs; i++) {
		if (i > 0)
			dm_buf_adds(b, ",");
		row_val(b, v->sigs[i]->domain);
		dm_buf_adds(b, "/");
		row_val(b, v->sigs[i]->selector);
		dm_buf_adds(b, "/");
		row_val(b, dm_dkim_result_str(v->sigs[i]->result));
		if (v->sigs[i]->result == DM_DKIM_PASS && a->dkim_aligned &&
		    a->dkim_aligned[i])
			aligned = "pass";
	}
	dm_buf_adds(b, ";");
	return aligned;
}

static char *
row_text(const dm_verdict *v, const dm_author *a, const dm_row_ctx *c)
{
	dm_buf b = DM_BUF_INIT;
	const char *dkim;
	bool spf_ok = v->spf.result == DM_SPF_PASS && a->spf_aligned;

	row_kv(&b, "ip", c->ip);
	row_kv(&b, "hf", a->domain);
	row_kv(&b, "ef", v->spf.scope == DM_SPF_SCOPE_MFROM ?
	    v->spf.domain : "");
	if (c->envelope_to != NULL)
		row_kv(&b, "et", c->envelope_to);
	row_kv(&b, "disp", dm_disposition_str(a->pv.disposition));
	row_reasons(&b, &a->pv);
	dkim = row_dkim(&b, v, a);
	row_kv(&b, "dkim", dkim);
	row_kv(&b, "spf", spf_ok ? "pass" : "fail");
	dm_buf_adds(&b, "as=");
	row_val(&b, v->spf.domain);
	dm_buf_adds(&b, "/");
	row_val(&b, dm_spf_scope_str(v->spf.scope));
	dm_buf_adds(&b, "/");
	row_val(&b, dm_spf_result_str(v->spf.result));
	dm_buf_adds(&b, ";");
	return dm_buf_take(&b, NULL);
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
		dm_log_oom();
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
