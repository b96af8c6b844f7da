/*
 * report/rptmetrics.h - dmarc-report's figures for node_exporter's
 * textfile collector (--metrics-file): what the last run did (reports
 * built, sent, retried, failed, skipped, dropped, bytes, refusals by
 * destination), when it ran and when a run last succeeded, in the
 * Prometheus text format. The file is written whole to PATH.tmp and
 * renamed over PATH, so a scrape never reads half of it (the collector
 * reads only *.prom: the temporary file is never taken for one).
 */
#ifndef RPTMETRICS_H
#define RPTMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "dm_buf.h"

struct rpt_refusal {
	char *dest;		/* the rua address */
	unsigned n;
};

typedef struct rpt_figures {
	unsigned built, sent, retried, failed, skipped, dropped;
	uint64_t bytes;		/* of the mails handed over */
	int64_t run_at;		/* this run, seconds since the epoch */
	int64_t last_success;	/* 0: never */
	struct rpt_refusal *refused;
	size_t nrefused;
} rpt_figures;

/* One more refusal of a mail to dest by the relay. */
void rpt_figures_refused(rpt_figures *f, const char *dest);
void rpt_figures_free(rpt_figures *f);

void rpt_metrics_render(dm_buf *b, const rpt_figures *f);
/* The last success a previous file recorded; 0 when none (or no file). */
int64_t rpt_metrics_last_success(const char *path);
/* Render and put in place atomically; -1 with err. */
int rpt_metrics_write(const char *path, const rpt_figures *f, char *err,
    size_t errlen);

#endif
