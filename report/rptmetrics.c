/*
 * report/rptmetrics.c - owns dmarc-report's metrics file: the figures
 * of one run in the Prometheus text format, and their atomic
 * replacement of the previous file (see rptmetrics.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm_log.h"
#include "dm_metrics.h"
#include "rptmetrics.h"

#define M_REPORTS	"dmarc_report_reports"
#define M_REFUSALS	"dmarc_report_destination_refusals"
#define M_SUCCESS	"dmarc_report_last_success_timestamp_seconds"

void
rpt_figures_refused(rpt_figures *f, const char *dest)
{
	struct rpt_refusal *n;
	size_t i;

	for (i = 0; i < f->nrefused; i++)
		if (strcmp(f->refused[i].dest, dest) == 0) {
			f->refused[i].n++;
			return;
		}
	if ((n = reallocarray(f->refused, f->nrefused + 1, sizeof(*n))) ==
	    NULL || (n[f->nrefused].dest = strdup(dest)) == NULL)
		dm_log_oom();
	n[f->nrefused++].n = 1;
	f->refused = n;
}

void
rpt_figures_free(rpt_figures *f)
{
	size_t i;

	for (i = 0; i < f->nrefused; i++)
		free(f->refused[i].dest);
	free(f->refused);
	f->refused = NULL;
	f->nrefused = 0;
}

/* A label value as the text format quotes it: \\, \" and \n escaped. */
static void
label_value(dm_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			dm_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			dm_buf_adds(b, "\\n");
		else
			dm_buf_add(b, s, 1);
	}
}

static void
render_reports(dm_buf *b, const rpt_figures *f)
{
	const struct { const char *what; unsigned n; } t[] = {
		{ "built", f->built }, { "sent", f->sent },
		{ "retried", f->retried }, { "failed", f->failed },
		{ "skipped", f->skipped }, { "dropped", f->dropped },
	};
	char labels[64];
	size_t i;

	dm_metrics_head(b, M_REPORTS, "gauge", "Reports of the last run, by "
	    "what became of them.");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(labels, sizeof(labels), "outcome=\"%s\"", t[i].what);
		dm_metrics_line(b, M_REPORTS, labels, t[i].n);
	}
	dm_metrics_head(b, "dmarc_report_bytes", "gauge", "Bytes of the "
	    "report mails the last run handed over.");
	dm_metrics_line(b, "dmarc_report_bytes", NULL, f->bytes);
}

void
rpt_metrics_render(dm_buf *b, const rpt_figures *f)
{
	dm_buf lab = DM_BUF_INIT;
	size_t i;

	render_reports(b, f);
	dm_metrics_head(b, M_REFUSALS, "gauge", "Mails of the last run "
	    "refused for one destination by the relay.");
	for (i = 0; i < f->nrefused; i++) {
		dm_buf_reset(&lab);
		dm_buf_adds(&lab, "destination=\"");
		label_value(&lab, f->refused[i].dest);
		dm_buf_adds(&lab, "\"");
		dm_metrics_line(b, M_REFUSALS, lab.p, f->refused[i].n);
	}
	dm_buf_free(&lab);
	dm_metrics_head(b, "dmarc_report_last_run_timestamp_seconds", "gauge",
	    "When the last run started.");
	dm_metrics_line(b, "dmarc_report_last_run_timestamp_seconds", NULL,
	    (uint64_t)f->run_at);
	dm_metrics_head(b, M_SUCCESS, "gauge", "When a run last sent every "
	    "report due (0: never).");
	dm_metrics_line(b, M_SUCCESS, NULL, (uint64_t)f->last_success);
}

int64_t
rpt_metrics_last_success(const char *path)
{
	char line[256];
	long long v = 0;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, M_SUCCESS " ", sizeof(M_SUCCESS)) == 0)
			v = strtoll(line + sizeof(M_SUCCESS), NULL, 10);
	fclose(fp);
	return v > 0 ? (int64_t)v : 0;
}

int
rpt_metrics_write(const char *path, const rpt_figures *f, char *err,
    size_t errlen)
{
	dm_buf b = DM_BUF_INIT, tmp = DM_BUF_INIT;
	ssize_t w = 0;
	size_t off;
	int fd, rc = -1;

	rpt_metrics_render(&b, f);
	dm_buf_printf(&tmp, "%s.tmp", path);
	if ((fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0)
		goto out;
	for (off = 0; off < b.len && w >= 0; off += (size_t)w)
		w = write(fd, b.p + off, b.len - off);
	if (w < 0 || fsync(fd) != 0) {
		(void)close(fd);
		goto out;
	}
	if (close(fd) == 0 && rename(tmp.p, path) == 0)
		rc = 0;
out:
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", tmp.p, strerror(errno));
		(void)unlink(tmp.p);
	}
	dm_buf_free(&b);
	dm_buf_free(&tmp);
	return rc;
}
