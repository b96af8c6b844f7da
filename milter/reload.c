/*
 * milter/reload.c - the engine in use, its replacement on SIGHUP, and
 * the drain on SIGTERM.
 *
 * A runtime is a config and the engine built from it, reference
 * counted. Messages take a reference at MAIL FROM and drop it at their
 * end; a reload builds the new runtime completely (config parsed, lists
 * compiled, resolver ready) before it swaps the pointer, so a bad file
 * changes nothing and a message never sees half of each.
 *
 * SIGHUP, SIGTERM and SIGINT are blocked in every thread and waited
 * for here only.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dm_log.h"
#include "dm_metrics.h"
#include "mlt.h"

struct mlt_runtime {
	dm_config *cfg;
	dm_engine *engine;
	unsigned long refs;	/* under rt_lock */
};

static pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;
static mlt_runtime *rt_current;
static char *rt_file;
static uint64_t rt_generation = 1;	/* under rt_lock */

static void
runtime_free(mlt_runtime *rt)
{
	dm_engine_free(rt->engine);
	dm_config_unref(rt->cfg);
	free(rt);
}

/* Parse the file and build an engine; NULL with err on any failure. */
static mlt_runtime *
runtime_build(const char *file, char *err, size_t errlen)
{
	mlt_runtime *rt;
	int level;

	if ((rt = calloc(1, sizeof(*rt))) == NULL)
		dm_log_oom();
	rt->refs = 1;
	if (dm_config_load(file, &rt->cfg, err, errlen) != DM_OK)
		goto fail;
	if ((rt->engine = dm_engine_new(rt->cfg, err, errlen)) == NULL)
		goto fail;
	level = (int)dm_config_int(rt->cfg, DM_OPT_LOG_LEVEL);
	dm_log_set_level(DM_LOG_ERR + level);
	return rt;
fail:
	runtime_free(rt);
	return NULL;
}

int
mlt_runtime_init(const char *conf_file, char *err, size_t errlen)
{
	/* Absolute: the daemon's working directory becomes "/". */
	if ((rt_file = realpath(conf_file, NULL)) == NULL &&
	    (rt_file = strdup(conf_file)) == NULL)
		dm_log_oom();
	if ((rt_current = runtime_build(rt_file, err, errlen)) == NULL)
		return -1;
	dm_metrics_set_generation(rt_generation);
	return 0;
}

mlt_runtime *
mlt_runtime_get(void)
{
	mlt_runtime *rt;

	pthread_mutex_lock(&rt_lock);
	rt = rt_current;
	rt->refs++;
	pthread_mutex_unlock(&rt_lock);
	return rt;
}

void
mlt_runtime_put(mlt_runtime *rt)
{
	unsigned long left;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&rt_lock);
	left = --rt->refs;
	pthread_mutex_unlock(&rt_lock);
	if (left == 0)
		runtime_free(rt);
}

dm_engine *
mlt_runtime_engine(mlt_runtime *rt)
{
	return rt->engine;
}

const dm_config *
mlt_runtime_config(mlt_runtime *rt)
{
	return rt->cfg;
}

int
mlt_runtime_reload(char *err, size_t errlen)
{
	mlt_runtime *rt, *old;

	if ((rt = runtime_build(rt_file, err, errlen)) == NULL) {
		dm_metric_inc(DM_MET_RELOADS, 1, 0, 0);
		return -1;
	}
	pthread_mutex_lock(&rt_lock);
	old = rt_current;
	rt_current = rt;
	dm_metrics_set_generation(++rt_generation);
	pthread_mutex_unlock(&rt_lock);
	dm_metric_inc(DM_MET_RELOADS, 0, 0, 0);
	mlt_runtime_put(old);
	return 0;
}

void
mlt_runtime_shutdown(void)
{
	mlt_runtime *rt;

	pthread_mutex_lock(&rt_lock);
	rt = rt_current;
	rt_current = NULL;
	pthread_mutex_unlock(&rt_lock);
	mlt_runtime_put(rt);
	free(rt_file);
	rt_file = NULL;
}

static int sig_drain_sec;

/* How long the MTAs may take to QUIT once their messages are answered. */
#define RELOAD_HANGUP_MS	1000

static void
signal_reload(void)
{
	char err[512] = "";

	if (mlt_runtime_reload(err, sizeof(err)) == 0)
		dm_log(DM_LOG_NOTICE, "reload: %s read, new settings in use",
		    rt_file);
	else
		dm_err("reload refused, the running settings stay: %s", err);
}

/*
 * No new connection is taken and no new message begun; the messages in
 * flight are finished (the wait ends the moment the last one does), the
 * MTAs get a moment to hang up, then the server stops.
 */
static void
signal_drain(void)
{
	if (!mlt_drain_begin())
		return;
	dm_log(DM_LOG_NOTICE, "stopping: finishing the messages in flight");
	mlt_server_quiesce();
	mlt_messages_wait(sig_drain_sec);
	mlt_server_wait_closed(RELOAD_HANGUP_MS);
	mlt_server_stop();
}

static void *
signal_thread(void *arg)
{
	sigset_t set;
	int sig;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		if ((sig = sigwaitinfo(&set, NULL)) < 0) {
			if (errno != EINTR)
				dm_err("signals: sigwaitinfo: %s",
				    strerror(errno));
			continue;
		}
		if (sig == SIGHUP)
			signal_reload();
		else
			signal_drain();
	}
	return NULL;
}

int
mlt_signal_thread_start(int drain_sec)
{
	pthread_t tid;

	sig_drain_sec = drain_sec;
	if (pthread_create(&tid, NULL, signal_thread, NULL) != 0)
		return -1;
	pthread_detach(tid);
	return 0;
}
