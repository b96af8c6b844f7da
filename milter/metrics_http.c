/*
 * milter/metrics_http.c - owns the /metrics endpoint (MetricsSocket):
 * libmicrohttpd's own thread answers GET /metrics with the registry of
 * lib/metrics.c and the counters' store figures, 404 to any other path
 * and 405 to any other method. It runs after the privileges are dropped
 * and binds only the address given; it never touches a message.
 */
#include "config.h"

#include <sys/socket.h>

#include <bsd/string.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_buf.h"
#include "dm_log.h"
#include "dm_metrics.h"
#include "mlt.h"

#define MET_TYPE	"text/plain; version=0.0.4; charset=utf-8"

static struct MHD_Daemon *met_daemon;
static dm_store *met_store;
static int met_redis;		/* a RedisURL: redis_up means something */

/* The store's own figures, read at the scrape (it keeps them locked). */
static void
met_store_render(dm_buf *b)
{
	dm_store_stats st;
	static const char *const n_written =
	    "dmarc_milter_store_written_total";

	if (met_store == NULL)
		return;
	dm_store_get_stats(met_store, &st);
	dm_metrics_head(b, "dmarc_milter_store_queued_total", "counter",
	    "Counter updates handed to the store's memory queue.");
	dm_metrics_line(b, "dmarc_milter_store_queued_total", NULL, st.queued);
	dm_metrics_head(b, n_written, "counter", "Counter updates written, "
	    "by where: every one to the journal first, then to Redis "
	    "(overflow: the queue was full, Redis gets it by replay).");
	dm_metrics_line(b, n_written, "to=\"redis\"", st.to_redis);
	dm_metrics_line(b, n_written, "to=\"journal\"", st.to_journal);
	dm_metrics_line(b, n_written, "to=\"overflow\"", st.overflow);
	dm_metrics_head(b, "dmarc_milter_store_syncs_total", "counter",
	    "fdatasync calls of the journal (one per group commit).");
	dm_metrics_line(b, "dmarc_milter_store_syncs_total", NULL, st.syncs);
	dm_metrics_head(b, "dmarc_milter_store_replayed_total", "counter",
	    "Journalled updates replayed into Redis.");
	dm_metrics_line(b, "dmarc_milter_store_replayed_total", NULL,
	    st.replayed);
	if (!met_redis)
		return;
	dm_metrics_head(b, "dmarc_milter_redis_up", "gauge",
	    "1 while Redis takes the counts, 0 while they go to the "
	    "journal.");
	dm_metrics_line(b, "dmarc_milter_redis_up", NULL, st.spooling ? 0 : 1);
}

static enum MHD_Result
met_reply(struct MHD_Connection *conn, unsigned code, char *body,
    size_t len, const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
met_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_len, void **state)
{
	dm_buf b = DM_BUF_INIT;
	char *body;
	size_t len;
	unsigned code = MHD_HTTP_OK;

	(void)cls; (void)version; (void)data; (void)data_len; (void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		dm_buf_adds(&b, "only GET\n");
	} else if (strcmp(url, "/metrics") != 0) {
		code = MHD_HTTP_NOT_FOUND;
		dm_buf_adds(&b, "not found: /metrics only\n");
	} else {
		dm_metrics_render(&b, PACKAGE_VERSION);
		met_store_render(&b);
	}
	body = dm_buf_take(&b, &len);
	return met_reply(conn, code, body, len, code == MHD_HTTP_OK ?
	    MET_TYPE : "text/plain");
}

/* "inet:PORT@ADDR" or "inet6:PORT@ADDR" into an address; -1 with err. */
static int
met_addr(const char *spec, struct addrinfo **ai, char *err, size_t errlen)
{
	struct addrinfo hints = { 0 };
	char port[32], *at;
	int rc;

	if (strncmp(spec, "inet:", 5) == 0) {
		hints.ai_family = AF_INET;
		spec += 5;
	} else if (strncmp(spec, "inet6:", 6) == 0) {
		hints.ai_family = AF_INET6;
		spec += 6;
	} else {
		snprintf(err, errlen, "MetricsSocket %s: inet:PORT@ADDR or "
		    "inet6:PORT@ADDR", spec);
		return -1;
	}
	strlcpy(port, spec, sizeof(port));
	if ((at = strchr(port, '@')) == NULL || at[1] == '\0') {
		snprintf(err, errlen, "MetricsSocket %s: no @ADDR (give "
		    "the address, e.g. 127.0.0.1)", spec);
		return -1;
	}
	*at = '\0';
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST | AI_PASSIVE;
	if ((rc = getaddrinfo(spec + (at - port) + 1, port, &hints, ai))
	    != 0) {
		snprintf(err, errlen, "MetricsSocket %s: %s", spec,
		    gai_strerror(rc));
		return -1;
	}
	return 0;
}

int
mlt_metrics_check(const char *spec, char *err, size_t errlen)
{
	struct addrinfo *ai = NULL;

	if (met_addr(spec, &ai, err, errlen) != 0)
		return -1;
	freeaddrinfo(ai);
	return 0;
}

int
mlt_metrics_start(const char *spec, dm_store *st, int redis, char *err,
    size_t errlen)
{
	struct addrinfo *ai = NULL;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (met_addr(spec, &ai, err, errlen) != 0)
		return -1;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	met_store = st;
	met_redis = redis;
	met_daemon = MHD_start_daemon(flags, 0, NULL, NULL, met_handler, NULL,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	    MHD_OPTION_CONNECTION_LIMIT, 16U,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (met_daemon == NULL) {
		snprintf(err, errlen, "MetricsSocket %s: cannot listen", spec);
		return -1;
	}
	dm_log(DM_LOG_INFO, "metrics served on %s", spec);
	return 0;
}

void
mlt_metrics_stop(void)
{
	if (met_daemon != NULL)
		MHD_stop_daemon(met_daemon);
	met_daemon = NULL;
	met_store = NULL;
}
