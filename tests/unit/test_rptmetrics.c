/*
 * tests/unit/test_rptmetrics.c - dmarc-report's metrics file: the exact
 * text of a run's figures (refusals merged by destination, a label value
 * with quotes escaped), the last success read back from a previous
 * file, and the file put in place whole or not at all.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rptmetrics.h"
#include "tap.h"

static const char want_full[] =
    "# HELP dmarc_report_reports Reports of the last run, by what became "
    "of them.\n"
    "# TYPE dmarc_report_reports gauge\n"
    "dmarc_report_reports{outcome=\"built\"} 4\n"
    "dmarc_report_reports{outcome=\"sent\"} 3\n"
    "dmarc_report_reports{outcome=\"retried\"} 1\n"
    "dmarc_report_reports{outcome=\"failed\"} 0\n"
    "dmarc_report_reports{outcome=\"skipped\"} 2\n"
    "dmarc_report_reports{outcome=\"dropped\"} 5\n"
    "# HELP dmarc_report_bytes Bytes of the report mails the last run "
    "handed over.\n"
    "# TYPE dmarc_report_bytes gauge\n"
    "dmarc_report_bytes 12345\n"
    "# HELP dmarc_report_destination_refusals Mails of the last run "
    "refused for one destination by the relay.\n"
    "# TYPE dmarc_report_destination_refusals gauge\n"
    "dmarc_report_destination_refusals{destination=\"a@x.example\"} 2\n"
    "dmarc_report_destination_refusals{destination="
    "\"\\\"q\\\\\\\"@y.example\"} 1\n"
    "# HELP dmarc_report_last_run_timestamp_seconds When the last run "
    "started.\n"
    "# TYPE dmarc_report_last_run_timestamp_seconds gauge\n"
    "dmarc_report_last_run_timestamp_seconds 1776160800\n"
    "# HELP dmarc_report_last_success_timestamp_seconds When a run last "
    "sent every report due (0: never).\n"
    "# TYPE dmarc_report_last_success_timestamp_seconds gauge\n"
    "dmarc_report_last_success_timestamp_seconds 1776074400\n";

static rpt_figures
figures(void)
{
	rpt_figures f = { 4, 3, 1, 0, 2, 5, 12345, 1776160800, 1776074400,
	    NULL, 0 };

	rpt_figures_refused(&f, "a@x.example");
	rpt_figures_refused(&f, "\"q\\\"@y.example");
	rpt_figures_refused(&f, "a@x.example");
	return f;
}

static void
test_render(void)
{
	rpt_figures f = figures(), none = { 0 };
	dm_buf b = DM_BUF_INIT;

	rpt_metrics_render(&b, &f);
	tap_is_str(b.p, want_full, "a run's figures, refusals merged and "
	    "escaped");
	dm_buf_reset(&b);
	rpt_metrics_render(&b, &none);
	tap_ok(strstr(b.p, "# TYPE dmarc_report_destination_refusals gauge\n"
	    "# HELP dmarc_report_last_run") != NULL &&
	    strstr(b.p, "dmarc_report_last_success_timestamp_seconds 0\n") !=
	    NULL, "no refusals: the family without samples; never a success: "
	    "0");
	dm_buf_free(&b);
	rpt_figures_free(&f);
	tap_ok(f.refused == NULL && f.nrefused == 0, "free empties");
}

static void
test_file(void)
{
	char dir[] = "/tmp/test_rptmetrics.XXXXXX", path[128], tmp[160];
	char err[256] = "";
	rpt_figures f = figures();
	char *text;

	if (mkdtemp(dir) == NULL)
		tap_bail("mkdtemp");
	snprintf(path, sizeof(path), "%s/dmarc_report.prom", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	tap_is_int(rpt_metrics_last_success(path), 0, "no file: no success");
	tap_is_int(rpt_metrics_write(path, &f, err, sizeof(err)), 0,
	    "written (%s)", err);
	text = tap_slurp(path, NULL);
	tap_is_str(text, want_full, "the file holds the rendered text");
	free(text);
	tap_ok(access(tmp, F_OK) != 0, "no temporary file left");
	tap_is_int(rpt_metrics_last_success(path), 1776074400,
	    "the last success read back from it");
	snprintf(path, sizeof(path), "%s/missing/x.prom", dir);
	tap_is_int(rpt_metrics_write(path, &f, err, sizeof(err)), -1,
	    "a directory that is not there: -1");
	tap_ok(strstr(err, "missing/x.prom.tmp") != NULL, "the error names "
	    "the file: %s", err);
	snprintf(path, sizeof(path), "%s/dmarc_report.prom", dir);
	(void)unlink(path);
	(void)rmdir(dir);
	rpt_figures_free(&f);
}

int
main(void)
{
	test_render();
	test_file();
	return tap_done();
}
