/*
 * lib/metrics.c - owns the milter's Prometheus registry: which counters
 * and histograms exist, their names, help and labels, their cells, and
 * how they are written in the text exposition format. Increments are
 * relaxed atomics on fixed arrays: nothing to allocate, no lock, and a
 * scrape that reads a cell while a mail thread adds to it sees either
 * figure, both true.
 */
#include "config.h"

#include <bsd/string.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dm_action.h"
#include "dm_dkim.h"
#include "dm_metrics.h"
#include "dm_policy.h"
#include "dm_resolver.h"
#include "dm_spf.h"

/* The enums' names, through one signature. */
static const char *l_dmarc(int i) { return dm_dmarc_result_str(i); }
static const char *l_disp(int i) { return dm_disposition_str(i); }
static const char *l_action(int i) { return dm_action_kind_str(i); }
static const char *l_reason(int i) { return dm_reason_type_str(i); }
static const char *l_spf(int i) { return dm_spf_result_str(i); }
static const char *l_dkim(int i) { return dm_dkim_result_str(i); }
static const char *l_dns(int i) { return dm_dns_status_str(i); }
static const char *l_reload(int i) { return i == 0 ? "ok" : "failed"; }

struct label {
	const char *name;
	const char *(*str)(int);
	int n;			/* values 0..n-1 */
};

#define L_DMARC		{ "result", l_dmarc, DM_DMARC_PERMERROR + 1 }
#define L_DISP		{ "disposition", l_disp, DM_DISP_REJECT + 1 }
#define L_ACTION	{ "action", l_action, DM_ACT_TEMPFAIL + 1 }
#define NCELLS_MAX	((DM_DMARC_PERMERROR + 1) * (DM_DISP_REJECT + 1) * \
			    (DM_ACT_TEMPFAIL + 1))

struct family {
	const char *name, *help;
	int nl;
	struct label l[3];
	_Atomic uint64_t cells[NCELLS_MAX];
};

static struct family fam[DM_MET_COUNT] = {
	[DM_MET_MESSAGES] = { "dmarc_milter_messages_total",
	    "Messages evaluated, by DMARC result, disposition and action.",
	    3, { L_DMARC, L_DISP, L_ACTION }, { 0 } },
	[DM_MET_OVERRIDES] = { "dmarc_milter_overrides_total",
	    "Policy overrides applied, by reason.",
	    1, { { "reason", l_reason, DM_REASON_POLICY_TEST_MODE + 1 } },
	    { 0 } },
	[DM_MET_SPF] = { "dmarc_milter_spf_results_total",
	    "SPF results of evaluated messages.",
	    1, { { "result", l_spf, DM_SPF_PERMERROR + 1 } }, { 0 } },
	[DM_MET_DKIM] = { "dmarc_milter_dkim_results_total",
	    "DKIM results, one per signature (none: an unsigned message).",
	    1, { { "result", l_dkim, DM_DKIM_PERMERROR + 1 } }, { 0 } },
	[DM_MET_DNS] = { "dmarc_milter_dns_lookups_total",
	    "DNS lookups, by outcome.",
	    1, { { "outcome", l_dns, DM_DNS_PERMFAIL + 1 } }, { 0 } },
	[DM_MET_SKIPPED] = { "dmarc_milter_messages_skipped_total",
	    "Messages not evaluated (IgnoreHosts, authenticated clients).",
	    0, { { NULL, NULL, 0 } }, { 0 } },
	[DM_MET_INTERNAL] = { "dmarc_milter_internal_errors_total",
	    "Messages that met an internal error, by the action taken.",
	    1, { L_ACTION }, { 0 } },
	[DM_MET_RELOADS] = { "dmarc_milter_config_reloads_total",
	    "Configuration reloads, by outcome.",
	    1, { { "outcome", l_reload, 2 } }, { 0 } },
};

/* Upper bounds in microseconds, rendered in seconds. */
static const uint64_t le_dns[] = { 1000, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000 };
static const uint64_t le_eom[] = { 1000, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000 };
#define NLE_MAX	(sizeof(le_eom) / sizeof(le_eom[0]))

struct hist {
	const char *name, *help;
	const uint64_t *le;
	size_t nle;
	_Atomic uint64_t bucket[NLE_MAX];	/* not cumulative */
	_Atomic uint64_t count, sum_us;
};

static struct hist hist[DM_HIST_COUNT] = {
	[DM_HIST_DNS] = { "dmarc_milter_dns_lookup_seconds",
	    "Time of one DNS lookup.", le_dns,
	    sizeof(le_dns) / sizeof(le_dns[0]), { 0 }, 0, 0 },
	[DM_HIST_EOM] = { "dmarc_milter_eom_seconds",
	    "Time to evaluate a message at its end (DNS and DKIM included).",
	    le_eom, NLE_MAX, { 0 }, 0, 0 },
};

static _Atomic uint64_t generation;

void
dm_metric_inc(dm_metric m, int l0, int l1, int l2)
{
	const struct family *f;
	int v[3] = { l0, l1, l2 }, i, cell = 0;

	if ((unsigned)m >= DM_MET_COUNT)
		return;
	f = &fam[m];
	for (i = 0; i < f->nl; i++) {
		if (v[i] < 0 || v[i] >= f->l[i].n)
			return;
		cell = cell * f->l[i].n + v[i];
	}
	atomic_fetch_add_explicit(&fam[m].cells[cell], 1,
	    memory_order_relaxed);
}

void
dm_histogram_observe(dm_histogram h, uint64_t usec)
{
	struct hist *hp;
	size_t i;

	if ((unsigned)h >= DM_HIST_COUNT)
		return;
	hp = &hist[h];
	for (i = 0; i < hp->nle && usec > hp->le[i]; i++)
		;
	if (i < hp->nle)
		atomic_fetch_add_explicit(&hp->bucket[i], 1,
		    memory_order_relaxed);
	atomic_fetch_add_explicit(&hp->sum_us, usec, memory_order_relaxed);
	atomic_fetch_add_explicit(&hp->count, 1, memory_order_relaxed);
}

uint64_t
dm_metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
dm_metrics_set_generation(uint64_t gen)
{
	atomic_store_explicit(&generation, gen, memory_order_relaxed);
}

void
dm_metrics_reset(void)
{
	size_t m, i;

	for (m = 0; m < DM_MET_COUNT; m++)
		for (i = 0; i < NCELLS_MAX; i++)
			atomic_store(&fam[m].cells[i], 0);
	for (m = 0; m < DM_HIST_COUNT; m++) {
		for (i = 0; i < NLE_MAX; i++)
			atomic_store(&hist[m].bucket[i], 0);
		atomic_store(&hist[m].count, 0);
		atomic_store(&hist[m].sum_us, 0);
	}
	atomic_store(&generation, 0);
}

void
dm_metrics_head(dm_buf *b, const char *name, const char *type,
    const char *help)
{
	dm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

void
dm_metrics_line(dm_buf *b, const char *name, const char *labels,
    uint64_t value)
{
	if (labels != NULL && *labels)
		dm_buf_printf(b, "%s{%s} %llu\n", name, labels,
		    (unsigned long long)value);
	else
		dm_buf_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

/* Cell number cell of f, its labels spelled out (the last one varies
 * fastest, as dm_metric_inc numbers them). */
static void
family_cell(dm_buf *b, const struct family *f, int cell)
{
	char labels[256] = "", one[96];
	int i, v[3], rest = cell;

	for (i = f->nl - 1; i >= 0; i--) {
		v[i] = rest % f->l[i].n;
		rest /= f->l[i].n;
	}
	for (i = 0; i < f->nl; i++) {
		snprintf(one, sizeof(one), "%s%s=\"%s\"", i ? "," : "",
		    f->l[i].name, f->l[i].str(v[i]));
		strlcat(labels, one, sizeof(labels));
	}
	dm_metrics_line(b, f->name, labels,
	    atomic_load_explicit(&f->cells[cell], memory_order_relaxed));
}

static void
render_family(dm_buf *b, const struct family *f)
{
	int i, n = 1;

	for (i = 0; i < f->nl; i++)
		n *= f->l[i].n;
	dm_metrics_head(b, f->name, "counter", f->help);
	for (i = 0; i < n; i++)
		family_cell(b, f, i);
}

/* Seconds from microseconds, exactly: 2500000 is "2.5", 1000 "0.001". */
static void
seconds(char *out, size_t len, uint64_t us)
{
	char *p;

	snprintf(out, len, "%llu.%06llu", (unsigned long long)(us / 1000000),
	    (unsigned long long)(us % 1000000));
	p = out + strlen(out) - 1;
	while (*p == '0')
		*p-- = '\0';
	if (*p == '.')
		*p = '\0';
}

static void
render_hist(dm_buf *b, const struct hist *h)
{
	char name[128], le[64], s[32];
	uint64_t cum = 0;
	size_t i;

	dm_metrics_head(b, h->name, "histogram", h->help);
	snprintf(name, sizeof(name), "%s_bucket", h->name);
	for (i = 0; i < h->nle; i++) {
		cum += atomic_load_explicit(&h->bucket[i],
		    memory_order_relaxed);
		seconds(s, sizeof(s), h->le[i]);
		snprintf(le, sizeof(le), "le=\"%s\"", s);
		dm_metrics_line(b, name, le, cum);
	}
	/* Read last: +Inf never falls below a bucket read before it. */
	cum = atomic_load_explicit(&h->count, memory_order_relaxed);
	dm_metrics_line(b, name, "le=\"+Inf\"", cum);
	seconds(s, sizeof(s), atomic_load_explicit(&h->sum_us,
	    memory_order_relaxed));
	dm_buf_printf(b, "%s_sum %s\n", h->name, s);
	dm_buf_printf(b, "%s_count %llu\n", h->name, (unsigned long long)cum);
}

void
dm_metrics_render(dm_buf *b, const char *version)
{
	size_t i;

	for (i = 0; i < DM_MET_COUNT; i++)
		render_family(b, &fam[i]);
	for (i = 0; i < DM_HIST_COUNT; i++)
		render_hist(b, &hist[i]);
	dm_metrics_head(b, "dmarc_milter_config_generation", "gauge",
	    "Generation of the loaded configuration (1 at start).");
	dm_metrics_line(b, "dmarc_milter_config_generation", NULL,
	    atomic_load_explicit(&generation, memory_order_relaxed));
	dm_metrics_head(b, "dmarc_milter_build_info", "gauge",
	    "The version running, always 1.");
	dm_buf_printf(b, "dmarc_milter_build_info{version=\"%s\"} 1\n",
	    version);
}
