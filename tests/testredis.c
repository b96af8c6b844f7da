/*
 * tests/testredis.c - see testredis.h. One server per test process.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "tap.h"
#include "testredis.h"

static pid_t tr_pid = -1;
static char tr_dir[] = "/tmp/testredis.XXXXXX";
static char tr_sock[sizeof(tr_dir) + 16], tr_url[sizeof(tr_sock) + 8];

static void
tr_stop(void)
{
	char cmd[sizeof(tr_dir) + 16];

	if (tr_pid > 0) {
		kill(tr_pid, SIGKILL);
		waitpid(tr_pid, NULL, 0);
		tr_pid = -1;
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tr_dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", tr_dir);
	}
}

bool
testredis_available(void)
{
	if (access("/usr/bin/redis-server", X_OK) == 0)
		return true;
	puts("1..0 # SKIP redis-server not installed");
	return false;
}

static bool
tr_ping(void)
{
	struct timeval tv = { 0, 200000 };
	redisContext *c = redisConnectUnixWithTimeout(tr_sock, tv);
	redisReply *r = NULL;
	bool ok = false;

	if (c != NULL && c->err == 0 && (r = redisCommand(c, "PING")) != NULL)
		ok = r->type == REDIS_REPLY_STATUS;
	if (r != NULL)
		freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	return ok;
}

const char *
testredis_start(void)
{
	struct timespec pause = { 0, 50000000 };
	int i;

	if (mkdtemp(tr_dir) == NULL)
		tap_bail("mkdtemp: %s", strerror(errno));
	snprintf(tr_sock, sizeof(tr_sock), "%s/redis.sock", tr_dir);
	snprintf(tr_url, sizeof(tr_url), "unix://%s", tr_sock);
	if ((tr_pid = fork()) < 0)
		tap_bail("fork: %s", strerror(errno));
	if (tr_pid == 0) {
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		execl("/usr/bin/redis-server", "redis-server", "--port", "0",
		    "--unixsocket", tr_sock, "--unixsocketperm", "700",
		    "--dir", tr_dir, "--save", "", "--appendonly", "no",
		    (char *)NULL);
		_exit(127);
	}
	atexit(tr_stop);
	for (i = 0; i < 200 && !tr_ping(); i++)
		nanosleep(&pause, NULL);
	if (i == 200)
		tap_bail("redis-server did not answer on %s", tr_sock);
	return tr_url;
}
