/*
 * lib/log.c - the one log module: the only caller of syslog(3) in the
 * project. Commands write to stderr; the daemon to syslog (and stderr in
 * the foreground). Every line may carry the message's queue ID.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "dm_log.h"

#define LOG_QID_MAX	128

static int log_where = DM_LOG_TO_STDERR;
static int log_level = DM_LOG_INFO;
static char log_ident[64] = "dmarc-milter";

static const struct {
	const char *name;
	int value;
} log_facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static const char *const log_level_names[] = {
	[DM_LOG_ERR] = "err", [DM_LOG_WARNING] = "warning",
	[DM_LOG_NOTICE] = "notice", [DM_LOG_INFO] = "info",
	[DM_LOG_DEBUG] = "debug",
};

int
dm_log_open(const char *ident, const char *facility, int where)
{
	int fac = -1;
	size_t i;

	for (i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
		if (facility != NULL &&
		    strcasecmp(facility, log_facilities[i].name) == 0)
			fac = log_facilities[i].value;
	if (facility != NULL && fac < 0)
		return -1;
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_where = where;
	if (where & DM_LOG_TO_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY,
		    fac < 0 ? LOG_MAIL : fac);
	return 0;
}

void
dm_log_set_level(int level)
{
	log_level = level;
}

int
dm_log_level_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]);
	    i++)
		if (log_level_names[i] != NULL &&
		    strcasecmp(name, log_level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
dm_vlog(int level, const char *qid, const char *fmt, va_list ap)
{
	char line[2048];
	int off = 0;

	if (level > log_level)
		return;
	/* The queue id comes from the MTA: at most LOG_QID_MAX of it, so
	 * that the message itself always has room (and off stays small). */
	if (qid != NULL && *qid != '\0')
		off = snprintf(line, sizeof(line), "%.*s: ", LOG_QID_MAX, qid);
	if (off < 0)
		off = 0;
	vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
	if (log_where & DM_LOG_TO_SYSLOG)
		syslog(level, "%s", line);
	if (log_where & DM_LOG_TO_STDERR)
		fprintf(stderr, "%s: %s\n", log_ident, line);
}

void
dm_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dm_vlog(level, NULL, fmt, ap);
	va_end(ap);
}

void
dm_log_qid(int level, const char *qid, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dm_vlog(level, qid, fmt, ap);
	va_end(ap);
}

void
dm_log_oom(void)
{
	static const char msg[] = "out of memory, exiting\n";

	if (log_where & DM_LOG_TO_SYSLOG)
		syslog(LOG_CRIT, "out of memory, exiting");
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(75);
	_exit(75);
}
