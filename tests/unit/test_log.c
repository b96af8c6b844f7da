/*
 * tests/unit/test_log.c - the one log module: lines to stderr carry the
 * program name, the queue id and the message; a queue id of any length
 * (it comes from the MTA) is cut, never written past the line buffer;
 * an overlong message is cut too; levels above LogLevel are dropped.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm_log.h"
#include "tap.h"

/* What the log wrote to stderr while fn ran. */
static char *
captured(void (*fn)(void))
{
	char path[] = "/tmp/test_log.XXXXXX", *out;
	int fd, saved;

	if ((fd = mkstemp(path)) < 0 || (saved = dup(STDERR_FILENO)) < 0 ||
	    dup2(fd, STDERR_FILENO) < 0)
		tap_bail("cannot capture stderr");
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	out = tap_slurp(path, NULL);
	unlink(path);
	return out;
}

static char long_qid[5000];

static void
log_plain(void)
{
	dm_log_qid(DM_LOG_NOTICE, "4XyZ12", "ip=%s action=%s", "192.0.2.1",
	    "accept");
}

static void
log_long_qid(void)
{
	dm_log_qid(DM_LOG_NOTICE, long_qid, "the message %d", 42);
}

static void
log_long_message(void)
{
	dm_log(DM_LOG_NOTICE, "%s end", long_qid);
}

static void
log_debug(void)
{
	dm_log(DM_LOG_DEBUG, "not shown");
}

int
main(void)
{
	char *out;

	dm_log_open("test_log", NULL, DM_LOG_TO_STDERR);
	memset(long_qid, 'Q', sizeof(long_qid) - 1);
	out = captured(log_plain);
	tap_is_str(out, "test_log: 4XyZ12: ip=192.0.2.1 action=accept\n",
	    "a line: program, queue id, message");
	free(out);
	out = captured(log_long_qid);
	tap_ok(out != NULL && strstr(out, ": the message 42\n") != NULL &&
	    strlen(out) < 300, "a 4,999-byte queue id is cut to 128 bytes; "
	    "the message is kept (%zu bytes)", out ? strlen(out) : 0);
	free(out);
	out = captured(log_long_message);
	tap_ok(out != NULL && strlen(out) < 2100 && out[strlen(out) - 1] ==
	    '\n', "a 5,000-byte message is cut at the line buffer");
	free(out);
	out = captured(log_debug);
	tap_is_str(out, "", "a debug line under the default level: nothing");
	free(out);
	return tap_done();
}
