/*
 * dm_metrics.h - the milter's figures for Prometheus (lib/metrics.c): a
 * fixed registry of counters and histograms, each cell a relaxed atomic
 * so that the mail path takes no lock, and the text exposition format
 * (version 0.0.4) they are rendered in. The label values are the names
 * the log line uses (dm_dmarc_result_str and the like), so a figure and
 * a log line say the same thing.
 *
 * The line writers (dm_metrics_head, dm_metrics_line) are shared with
 * dmarc-report, whose figures are its own and go to a file.
 */
#ifndef DM_METRICS_H
#define DM_METRICS_H

#include <stdint.h>

#include "dm_buf.h"

/* Counters; the comment names their labels, indexed by those enums. */
typedef enum dm_metric {
	DM_MET_MESSAGES = 0,	/* dm_dmarc_result, dm_disposition, */
				/* dm_action_kind */
	DM_MET_OVERRIDES,	/* dm_reason_type */
	DM_MET_SPF,		/* dm_spf_result */
	DM_MET_DKIM,		/* dm_dkim_result (none: unsigned) */
	DM_MET_DNS,		/* dm_dns_status */
	DM_MET_SKIPPED,		/* none: messages not evaluated */
	DM_MET_INTERNAL,	/* dm_action_kind of OnInternalError */
	DM_MET_RELOADS,		/* 0 ok, 1 failed */
	DM_MET_COUNT
} dm_metric;

typedef enum dm_histogram {
	DM_HIST_DNS = 0,	/* one DNS lookup */
	DM_HIST_EOM,		/* a message's evaluation at its end */
	DM_HIST_COUNT
} dm_histogram;

/* Labels beyond the metric's own are ignored; out of range: dropped. */
void dm_metric_inc(dm_metric m, int l0, int l1, int l2);
void dm_histogram_observe(dm_histogram h, uint64_t usec);
/* The loaded configuration's generation: 1 at start, +1 a reload. */
void dm_metrics_set_generation(uint64_t gen);
/* Microseconds of CLOCK_MONOTONIC, for the histograms. */
uint64_t dm_metrics_now_us(void);
/* Every figure back to zero (tests, and only them). */
void dm_metrics_reset(void);

/*
 * The registry in the text format, every label combination included
 * (a zero is a figure too), then dmarc_milter_build_info.
 */
void dm_metrics_render(dm_buf *b, const char *version);

/* "# HELP name help\n# TYPE name type\n" */
void dm_metrics_head(dm_buf *b, const char *name, const char *type,
    const char *help);
/* "name{labels} value\n"; labels is 'a="x",b="y"' or NULL. */
void dm_metrics_line(dm_buf *b, const char *name, const char *labels,
    uint64_t value);

#endif
