/*
 * milter/worker.c - the evaluation threads: the end of a message (DNS
 * lookups up to DNSTimeout, DKIM crypto) runs here, never on an I/O
 * thread, so a connection waiting on a slow DNS server delays no other
 * connection's I/O. The queue needs no bound of its own: a connection
 * has at most one message at its end, and connections are bounded by
 * MaxConnections.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dm_log.h"
#include "dm_metrics.h"
#include "mlt.h"

struct job {
	void (*fn)(void *);
	void *arg;
	struct job *next;
};

static pthread_mutex_t wk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wk_cond = PTHREAD_COND_INITIALIZER;
static struct job *wk_head, *wk_tail;
static bool wk_stopping;
static pthread_t *wk_threads;
static int wk_n;

static void *
worker_main(void *arg)
{
	struct job *j;
	uint64_t t0;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&wk_lock);
		while (wk_head == NULL && !wk_stopping)
			pthread_cond_wait(&wk_cond, &wk_lock);
		if ((j = wk_head) == NULL) {
			pthread_mutex_unlock(&wk_lock);
			return NULL;
		}
		if ((wk_head = j->next) == NULL)
			wk_tail = NULL;
		pthread_mutex_unlock(&wk_lock);
		/* Every job is a message's end (server.c). */
		t0 = dm_metrics_now_us();
		j->fn(j->arg);
		dm_histogram_observe(DM_HIST_EOM, dm_metrics_now_us() - t0);
		free(j);
	}
}

int
mlt_worker_start(int nthreads)
{
	int i;

	if ((wk_threads = calloc((size_t)nthreads, sizeof(*wk_threads))) ==
	    NULL)
		dm_log_oom();
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&wk_threads[i], NULL, worker_main, NULL) !=
		    0)
			break;
		wk_n++;
	}
	return wk_n == nthreads ? 0 : -1;
}

void
mlt_worker_submit(void (*fn)(void *), void *arg)
{
	struct job *j;

	if ((j = malloc(sizeof(*j))) == NULL)
		dm_log_oom();
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&wk_lock);
	if (wk_tail != NULL)
		wk_tail->next = j;
	else
		wk_head = j;
	wk_tail = j;
	pthread_cond_signal(&wk_cond);
	pthread_mutex_unlock(&wk_lock);
}

/* The queue is run dry first: a job's connection waits for its answer. */
void
mlt_worker_stop(void)
{
	int i;

	pthread_mutex_lock(&wk_lock);
	wk_stopping = true;
	pthread_cond_broadcast(&wk_cond);
	pthread_mutex_unlock(&wk_lock);
	for (i = 0; i < wk_n; i++)
		pthread_join(wk_threads[i], NULL);
	free(wk_threads);
	wk_threads = NULL;
	wk_n = 0;
}
