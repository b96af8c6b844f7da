/*
 * tests/unit/test_metrics.c - the Prometheus registry: increments land
 * in the cell their labels name, out-of-range labels are dropped, and
 * the text format of every kind of family is checked byte for byte.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_action.h"
#include "dm_metrics.h"
#include "dm_policy.h"
#include "dm_resolver.h"
#include "tap.h"

/* The block of one family in a render: its HELP line to the next. */
static char *
block(const char *all, const char *name)
{
	char head[160], *out;
	const char *p, *end;

	snprintf(head, sizeof(head), "# HELP %s ", name);
	if ((p = strstr(all, head)) == NULL)
		return strdup("(missing)");
	if ((end = strstr(p + 1, "# HELP ")) == NULL)
		end = p + strlen(p);
	if ((out = strndup(p, (size_t)(end - p))) == NULL)
		tap_bail("strndup");
	return out;
}

static char *
render(void)
{
	dm_buf b = DM_BUF_INIT;

	dm_metrics_render(&b, "1.2.3");
	return dm_buf_take(&b, NULL);
}

static void
test_blocks(void)
{
	static const struct {
		const char *name, *want;
	} t[] = {
		{ "dmarc_milter_dns_lookups_total",
		  "# HELP dmarc_milter_dns_lookups_total DNS lookups, by "
		  "outcome.\n"
		  "# TYPE dmarc_milter_dns_lookups_total counter\n"
		  "dmarc_milter_dns_lookups_total{outcome=\"ok\"} 2\n"
		  "dmarc_milter_dns_lookups_total{outcome=\"nodata\"} 0\n"
		  "dmarc_milter_dns_lookups_total{outcome=\"nxdomain\"} 1\n"
		  "dmarc_milter_dns_lookups_total{outcome=\"tempfail\"} 0\n"
		  "dmarc_milter_dns_lookups_total{outcome=\"permfail\"} 0\n" },
		{ "dmarc_milter_messages_skipped_total",
		  "# HELP dmarc_milter_messages_skipped_total Messages not "
		  "evaluated (IgnoreHosts, authenticated clients).\n"
		  "# TYPE dmarc_milter_messages_skipped_total counter\n"
		  "dmarc_milter_messages_skipped_total 3\n" },
		{ "dmarc_milter_dns_lookup_seconds",
		  "# HELP dmarc_milter_dns_lookup_seconds Time of one DNS "
		  "lookup.\n"
		  "# TYPE dmarc_milter_dns_lookup_seconds histogram\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"0.001\"} 1\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"0.005\"} 1\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"0.01\"} 1\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"0.025\"} 2\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"0.05\"} 2\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"0.1\"} 2\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"0.25\"} 2\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"0.5\"} 2\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"1\"} 2\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"2.5\"} 2\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"5\"} 2\n"
		  "dmarc_milter_dns_lookup_seconds_bucket{le=\"+Inf\"} 3\n"
		  "dmarc_milter_dns_lookup_seconds_sum 7.0225\n"
		  "dmarc_milter_dns_lookup_seconds_count 3\n" },
		{ "dmarc_milter_config_generation",
		  "# HELP dmarc_milter_config_generation Generation of the "
		  "loaded configuration (1 at start).\n"
		  "# TYPE dmarc_milter_config_generation gauge\n"
		  "dmarc_milter_config_generation 4\n" },
		{ "dmarc_milter_build_info",
		  "# HELP dmarc_milter_build_info The version running, "
		  "always 1.\n"
		  "# TYPE dmarc_milter_build_info gauge\n"
		  "dmarc_milter_build_info{version=\"1.2.3\"} 1\n" },
	};
	char *all, *got;
	size_t i;

	dm_metrics_reset();
	dm_metric_inc(DM_MET_DNS, DM_DNS_OK, 0, 0);
	dm_metric_inc(DM_MET_DNS, DM_DNS_OK, 0, 0);
	dm_metric_inc(DM_MET_DNS, DM_DNS_NXDOMAIN, 0, 0);
	dm_metric_inc(DM_MET_DNS, DM_DNS_PERMFAIL + 1, 0, 0);
	dm_metric_inc(DM_MET_DNS, -1, 0, 0);
	for (i = 0; i < 3; i++)
		dm_metric_inc(DM_MET_SKIPPED, 0, 0, 0);
	/* on a bound counts in it; past the last only in +Inf */
	dm_histogram_observe(DM_HIST_DNS, 1000);
	dm_histogram_observe(DM_HIST_DNS, 20500);
	dm_histogram_observe(DM_HIST_DNS, 7001000);
	dm_metrics_set_generation(4);
	all = render();
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		got = block(all, t[i].name);
		tap_is_str(got, t[i].want, "%s: the exact text", t[i].name);
		free(got);
	}
	free(all);
}

/* The three labels of messages, each cell its own. */
static void
test_messages(void)
{
	static const struct {
		int r, d, a;
		const char *line;
	} t[] = {
		{ DM_DMARC_NONE, DM_DISP_NONE, DM_ACT_ACCEPT,
		  "dmarc_milter_messages_total{result=\"none\","
		  "disposition=\"none\",action=\"accept\"} 1\n" },
		{ DM_DMARC_FAIL, DM_DISP_REJECT, DM_ACT_REJECT,
		  "dmarc_milter_messages_total{result=\"fail\","
		  "disposition=\"reject\",action=\"reject\"} 2\n" },
		{ DM_DMARC_PERMERROR, DM_DISP_REJECT, DM_ACT_TEMPFAIL,
		  "dmarc_milter_messages_total{result=\"permerror\","
		  "disposition=\"reject\",action=\"tempfail\"} 3\n" },
		{ DM_DMARC_PASS, DM_DISP_QUARANTINE, DM_ACT_QUARANTINE,
		  "dmarc_milter_messages_total{result=\"pass\","
		  "disposition=\"quarantine\",action=\"quarantine\"} 4\n" },
	};
	char *all, *got;
	size_t i, j, lines = 0;
	const char *p;

	dm_metrics_reset();
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (j = 0; j <= i; j++)
			dm_metric_inc(DM_MET_MESSAGES, t[i].r, t[i].d, t[i].a);
	dm_metric_inc(DM_MET_MESSAGES, DM_DMARC_PASS, 3, DM_ACT_ACCEPT);
	all = render();
	got = block(all, "dmarc_milter_messages_total");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		tap_ok(strstr(got, t[i].line) != NULL, "line %.*s",
		    (int)strlen(t[i].line) - 1, t[i].line);
	for (p = got; (p = strstr(p, "} ")) != NULL; p += 2)
		if (p[2] != '0')
			lines++;
	tap_is_int((long)lines, 4, "only those four are not zero "
	    "(an out-of-range disposition is dropped)");
	for (lines = 0, p = got; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	tap_is_int((long)lines, 2 + 5 * 3 * 4, "every combination listed");
	free(got);
	free(all);
}

static void
test_lines(void)
{
	dm_buf b = DM_BUF_INIT;

	dm_metrics_head(&b, "dmarc_report_sent_total", "counter", "Sent.");
	dm_metrics_line(&b, "dmarc_report_sent_total", NULL, 7);
	dm_metrics_line(&b, "dmarc_report_sent_total", "", 8);
	dm_metrics_line(&b, "dmarc_report_refused_total",
	    "destination=\"a.example\"", 18446744073709551615ULL);
	tap_is_str(b.p, "# HELP dmarc_report_sent_total Sent.\n"
	    "# TYPE dmarc_report_sent_total counter\n"
	    "dmarc_report_sent_total 7\n"
	    "dmarc_report_sent_total 8\n"
	    "dmarc_report_refused_total{destination=\"a.example\"} "
	    "18446744073709551615\n", "head and lines, with and without "
	    "labels, the largest value");
	dm_buf_free(&b);
}

int
main(void)
{
	test_blocks();
	test_messages();
	test_lines();
	return tap_done();
}
