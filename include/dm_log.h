/*
 * dm_log.h - the one log module. Only log.c calls syslog(3).
 *
 * Lines carry a queue ID where there is one (dm_log_qid). Commands log to
 * stderr; the daemon to syslog, and to stderr too in the foreground.
 */
#ifndef DM_LOG_H
#define DM_LOG_H

#include <stdarg.h>

enum dm_log_level {
	DM_LOG_ERR = 3,
	DM_LOG_WARNING = 4,
	DM_LOG_NOTICE = 5,
	DM_LOG_INFO = 6,
	DM_LOG_DEBUG = 7
};

#define DM_LOG_TO_STDERR 0x1
#define DM_LOG_TO_SYSLOG 0x2

/* ident: program name; facility: a syslog facility name ("mail"). */
int dm_log_open(const char *ident, const char *facility, int where);
void dm_log_set_level(int level);
int dm_log_level_from_name(const char *name);	/* -1 when unknown */

void dm_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dm_log_qid(int level, const char *qid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void dm_vlog(int level, const char *qid, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define dm_err(...)	dm_log(DM_LOG_ERR, __VA_ARGS__)
#define dm_warn(...)	dm_log(DM_LOG_WARNING, __VA_ARGS__)
#define dm_info(...)	dm_log(DM_LOG_INFO, __VA_ARGS__)
#define dm_debug(...)	dm_log(DM_LOG_DEBUG, __VA_ARGS__)

/* Out of memory after start-up: the one allowed exit. */
void dm_log_oom(void) __attribute__((noreturn));

#endif
