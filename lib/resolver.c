/*
 * lib/resolver.c - the only DNS client of the project, over libunbound.
 *
 * One ub_ctx (one cache, one background resolver thread) serves every
 * thread. libunbound's blocking ub_resolve() has no timeout, so a lookup
 * is started with ub_resolve_async() and waited for here, up to the
 * resolver's timeout.
 *
 * Waiting with several threads: answers arrive on one pipe (ub_fd) and
 * ub_process() runs the callback of whatever answer it reads, whichever
 * thread's query it was. If every waiter polled the pipe itself, a thread
 * whose answer another thread had read would sleep in poll() until its
 * deadline. So one waiter at a time (the leader) polls and processes;
 * the others sleep on a condition variable that every callback and every
 * change of leader broadcasts.
 *
 * Freeing a query's state exactly once: in threaded mode libunbound
 * fetches the callback under its own lock and unlinks the query before
 * calling it, and ub_cancel() marks the query under that same lock. So
 * when ub_cancel() succeeds the callback will never run, and when it says
 * UB_NOID the callback is running (or ran) in another thread and we wait
 * for it to finish before the state, which lives on our stack, goes away.
 *
 * Answers are also kept here, in a small table in front of libunbound:
 * even an answer from libunbound's cache costs a round trip through its
 * background thread (two pipe writes, wake-ups of every waiter), which
 * was most of a message's CPU under load. An answer is kept for its TTL
 * (at most RESOLVER_CACHE_TTL s), shared read-only by reference count;
 * temporary failures and bogus answers are never kept.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "dm_hash.h"
#include "dm_log.h"
#include "dm_metrics.h"
#include "dm_resolver.h"

#define RESOLVER_CLASS_IN	1
#define RESOLVER_TYPE_A		1
#define RESOLVER_TYPE_TXT	16
#define RESOLVER_RCODE_NOERROR	0
#define RESOLVER_RCODE_NXDOMAIN	3

/* A direct-mapped table: a new answer replaces what its slot held. */
#define RESOLVER_CACHE_SLOTS	4096
#define RESOLVER_CACHE_LOCKS	64
#define RESOLVER_CACHE_TTL	300
/* Bigger answers are not kept: the table then holds at most 32 MB, even
 * when mail from thousands of hostile domains brings 64 KB TXT sets. */
#define RESOLVER_CACHE_MAX_ANSWER	8192

/* One answer of libunbound, read-only once made, shared by count. */
struct resolver_ans {
	atomic_int refs;
	int rrtype;
	time_t expires;		/* CLOCK_MONOTONIC seconds */
	struct ub_result *res;
	char name[];
};

struct dm_resolver {
	struct ub_ctx *ctx;
	int timeout_ms;
	struct resolver_ans *cache[RESOLVER_CACHE_SLOTS];
	pthread_mutex_t cache_mu[RESOLVER_CACHE_LOCKS];
	pthread_mutex_t mu;	/* guards leader and every query's fields */
	pthread_cond_t cv;	/* an answer came, or the leader stepped down */
	int leader;		/* a thread is polling ub_fd() */
};

/* One lookup in flight; on the stack of the thread that asked. */
struct resolver_query {
	dm_resolver *r;
	int done;
	int err;
	struct ub_result *res;
};

static void
resolver_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Milliseconds left before the deadline, rounded up; <= 0 when past. */
static int
resolver_ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
	    (deadline->tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return 0;
	return (int)((ns + 999999) / 1000000);
}

/*
 * RFC 1035 limits, checked here so that a bad name is a permanent error
 * and never a query. A backslash is refused because libunbound would read
 * it as an escape, and the name asked for would not be the name given.
 */
static int
resolver_name_ok(const char *name)
{
	size_t len, i, label = 0;

	if (name == NULL)
		return 0;
	len = strnlen(name, 256);
	if (len == 1 && name[0] == '.')
		return 1;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (name[i] == '\\') {
			return 0;
		} else if (++label > 63) {
			return 0;
		}
	}
	return label > 0;
}

/* Runs in whichever thread called ub_process(); touches q only locked. */
static void
resolver_callback(void *arg, int err, struct ub_result *res)
{
	struct resolver_query *q = arg;
	dm_resolver *r = q->r;

	pthread_mutex_lock(&r->mu);
	q->err = err;
	q->res = res;
	q->done = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Be the leader for a while: poll the answer pipe and run callbacks. */
static void
resolver_lead(dm_resolver *r, int ms)
{
	struct pollfd pfd;
	int rc;

	pfd.fd = ub_fd(r->ctx);
	pfd.events = POLLIN;
	pfd.revents = 0;
	rc = poll(&pfd, 1, ms);
	if (rc <= 0)
		return;
	rc = ub_process(r->ctx);
	if (rc != 0) {
		dm_err("resolver: ub_process: %s", ub_strerror(rc));
		/* a broken pipe stays readable: do not spin on it */
		(void)poll(NULL, 0, 10);
	}
}

/* Returns 1 when the answer came before the deadline, 0 otherwise. */
static int
resolver_wait(dm_resolver *r, struct resolver_query *q,
    const struct timespec *deadline)
{
	int ms, done;

	pthread_mutex_lock(&r->mu);
	while (!q->done) {
		ms = resolver_ms_left(deadline);
		if (ms <= 0)
			break;
		if (r->leader) {
			(void)pthread_cond_timedwait(&r->cv, &r->mu, deadline);
			continue;
		}
		r->leader = 1;
		pthread_mutex_unlock(&r->mu);
		resolver_lead(r, ms);
		pthread_mutex_lock(&r->mu);
		r->leader = 0;
		pthread_cond_broadcast(&r->cv);
	}
	done = q->done;
	pthread_mutex_unlock(&r->mu);
	return done;
}

/*
 * Give up a query. Afterwards the callback will not run any more, so the
 * caller may let q go; q->done says whether it ran after all.
 */
static void
resolver_abandon(dm_resolver *r, struct resolver_query *q, int id)
{
	if (id == 0 || ub_cancel(r->ctx, id) == UB_NOERROR)
		return;
	/* UB_NOID: another thread holds the answer and is calling back */
	pthread_mutex_lock(&r->mu);
	while (!q->done)
		(void)pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

static void
resolver_put(struct resolver_ans *a)
{
	if (a != NULL && atomic_fetch_sub(&a->refs, 1) == 1) {
		ub_resolve_free(a->res);
		free(a);
	}
}

static time_t
resolver_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

/* FNV-1a of the name as asked (no case folding: the reply echoes it). */
static size_t
resolver_slot(const char *name, int rrtype)
{
	return dm_hash_str(DM_HASH_INIT ^ (uint32_t)rrtype, name) %
	    RESOLVER_CACHE_SLOTS;
}

static struct resolver_ans *
resolver_cache_get(dm_resolver *r, const char *name, int rrtype)
{
	size_t slot = resolver_slot(name, rrtype);
	pthread_mutex_t *mu = &r->cache_mu[slot % RESOLVER_CACHE_LOCKS];
	struct resolver_ans *a;

	pthread_mutex_lock(mu);
	a = r->cache[slot];
	if (a != NULL && a->rrtype == rrtype && a->expires > resolver_now() &&
	    strcmp(a->name, name) == 0)
		atomic_fetch_add(&a->refs, 1);
	else
		a = NULL;
	pthread_mutex_unlock(mu);
	return a;
}

/* Keep a final answer (not a temporary failure) for its TTL. */
static void
resolver_cache_put(dm_resolver *r, struct resolver_ans *a)
{
	size_t slot = resolver_slot(a->name, a->rrtype);
	pthread_mutex_t *mu = &r->cache_mu[slot % RESOLVER_CACHE_LOCKS];
	struct resolver_ans *old;
	int ttl = a->res->ttl;

	if (ttl <= 0 || a->res->bogus || a->res->answer_len >
	    RESOLVER_CACHE_MAX_ANSWER || (a->res->rcode !=
	    RESOLVER_RCODE_NOERROR && a->res->rcode != RESOLVER_RCODE_NXDOMAIN))
		return;
	a->expires = resolver_now() + (ttl < RESOLVER_CACHE_TTL ? ttl :
	    RESOLVER_CACHE_TTL);
	atomic_fetch_add(&a->refs, 1);
	pthread_mutex_lock(mu);
	old = r->cache[slot];
	r->cache[slot] = a;
	pthread_mutex_unlock(mu);
	resolver_put(old);
}

static void
resolver_cache_clear(dm_resolver *r)
{
	size_t i;

	for (i = 0; i < RESOLVER_CACHE_SLOTS; i++) {
		resolver_put(r->cache[i]);
		r->cache[i] = NULL;
	}
}

static dm_dns_status
resolver_status(const struct ub_result *res)
{
	if (res->bogus)
		return DM_DNS_TEMPFAIL;
	if (res->rcode == RESOLVER_RCODE_NXDOMAIN)
		return DM_DNS_NXDOMAIN;
	if (res->rcode != RESOLVER_RCODE_NOERROR)
		return DM_DNS_TEMPFAIL;
	return res->havedata ? DM_DNS_OK : DM_DNS_NODATA;
}

/*
 * Ask libunbound and wait. Returns the result (the caller frees it), or
 * NULL with *st saying why there is none.
 */
static struct ub_result *
resolver_ask_ub(dm_resolver *r, const char *name, int rrtype,
    dm_dns_status *st)
{
	struct resolver_query q;
	struct timespec deadline;
	int rc, id = 0;

	memset(&q, 0, sizeof(q));
	q.r = r;
	resolver_deadline(&deadline, r->timeout_ms);
	rc = ub_resolve_async(r->ctx, name, rrtype, RESOLVER_CLASS_IN, &q,
	    resolver_callback, &id);
	if (rc != 0) {
		resolver_abandon(r, &q, id);
		ub_resolve_free(q.res);
		dm_warn("resolver: %s/%d: %s", name, rrtype, ub_strerror(rc));
		*st = rc == UB_SYNTAX ? DM_DNS_PERMFAIL : DM_DNS_TEMPFAIL;
		return NULL;
	}
	if (!resolver_wait(r, &q, &deadline)) {
		resolver_abandon(r, &q, id);
		if (!q.done) {
			dm_debug("resolver: %s/%d: timed out after %d ms",
			    name, rrtype, r->timeout_ms);
			*st = DM_DNS_TEMPFAIL;
			return NULL;
		}
	}
	if (q.err != 0 || q.res == NULL) {
		dm_debug("resolver: %s/%d: %s", name, rrtype,
		    ub_strerror(q.err));
		ub_resolve_free(q.res);
		*st = DM_DNS_TEMPFAIL;
		return NULL;
	}
	*st = resolver_status(q.res);
	if (*st == DM_DNS_TEMPFAIL)
		dm_debug("resolver: %s/%d: rcode %d%s", name, rrtype,
		    q.res->rcode, q.res->bogus ? " (bogus)" : "");
	return q.res;
}

/*
 * An answer from the table, or from libunbound (then kept). Returns it
 * (release with resolver_put), or NULL with *st saying why there is none.
 */
static struct resolver_ans *
resolver_ask(dm_resolver *r, const char *name, int rrtype, dm_dns_status *st)
{
	struct resolver_ans *a;
	struct ub_result *res;
	size_t len;
	uint64_t t0;

	if (!resolver_name_ok(name)) {
		*st = DM_DNS_PERMFAIL;
		return NULL;
	}
	if ((a = resolver_cache_get(r, name, rrtype)) != NULL) {
		*st = resolver_status(a->res);
		return a;
	}
	/* Only lookups that leave the table are figures (dm_metrics.h). */
	t0 = dm_metrics_now_us();
	res = resolver_ask_ub(r, name, rrtype, st);
	dm_metric_inc(DM_MET_DNS, (int)*st, 0, 0);
	dm_histogram_observe(DM_HIST_DNS, dm_metrics_now_us() - t0);
	if (res == NULL)
		return NULL;
	len = strlen(name) + 1;
	if ((a = malloc(sizeof(*a) + len)) == NULL) {
		ub_resolve_free(res);
		*st = DM_DNS_TEMPFAIL;
		return NULL;
	}
	atomic_init(&a->refs, 1);
	a->rrtype = rrtype;
	a->res = res;
	memcpy(a->name, name, len);
	resolver_cache_put(r, a);
	return a;
}

static int
resolver_setup(struct ub_ctx *ctx, const char *config_file, char *err,
    size_t errlen)
{
	int rc;

	if (config_file != NULL) {
		/* libunbound would print its own complaint on stderr first. */
		if (access(config_file, R_OK) != 0) {
			snprintf(err, errlen, "%s: %s", config_file,
			    strerror(errno));
			return -1;
		}
		if ((rc = ub_ctx_config(ctx, config_file)) != 0) {
			snprintf(err, errlen, "%s: %s (missing or malformed)",
			    config_file, ub_strerror(rc));
			return -1;
		}
	} else {
		if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0) {
			snprintf(err, errlen, "/etc/resolv.conf: %s",
			    ub_strerror(rc));
			return -1;
		}
		if ((rc = ub_ctx_hosts(ctx, NULL)) != 0) {
			snprintf(err, errlen, "/etc/hosts: %s",
			    ub_strerror(rc));
			return -1;
		}
	}
	if ((rc = ub_ctx_async(ctx, 1)) != 0) {
		snprintf(err, errlen, "ub_ctx_async: %s", ub_strerror(rc));
		return -1;
	}
	/*
	 * Removing a zone that is not there finalises the context now, so a
	 * bad local-zone or local-data line fails at start-up rather than
	 * at the first lookup. No thread is started yet (fork stays safe).
	 */
	if ((rc = ub_ctx_zone_remove(ctx, "dm-resolver-finalize.invalid."))
	    != 0) {
		snprintf(err, errlen, "%s: %s", config_file != NULL ?
		    config_file : "resolver", ub_strerror(rc));
		return -1;
	}
	return 0;
}

dm_resolver *
dm_resolver_new(const char *config_file, int timeout_ms, char *err,
    size_t errlen)
{
	dm_resolver *r;
	pthread_condattr_t ca;
	size_t i;

	if (timeout_ms <= 0) {
		snprintf(err, errlen, "resolver timeout must be > 0 ms");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->timeout_ms = timeout_ms;
	pthread_mutex_init(&r->mu, NULL);
	for (i = 0; i < RESOLVER_CACHE_LOCKS; i++)
		pthread_mutex_init(&r->cache_mu[i], NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((r->ctx = ub_ctx_create()) == NULL) {
		snprintf(err, errlen, "ub_ctx_create failed");
		goto fail;
	}
	if (resolver_setup(r->ctx, config_file, err, errlen) != 0)
		goto fail;
	return r;
fail:
	dm_resolver_free(r);
	return NULL;
}

void
dm_resolver_free(dm_resolver *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (r->ctx != NULL)
		ub_ctx_delete(r->ctx);
	resolver_cache_clear(r);
	for (i = 0; i < RESOLVER_CACHE_LOCKS; i++)
		pthread_mutex_destroy(&r->cache_mu[i]);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

dm_dns_status
dm_resolver_lookup(dm_resolver *r, const char *name, int rrtype,
    dm_rr **rrs, size_t *n)
{
	struct resolver_ans *a;
	const struct ub_result *res;
	dm_dns_status st;
	dm_rr *out = NULL;
	size_t cnt = 0, i;

	*rrs = NULL;
	*n = 0;
	if ((a = resolver_ask(r, name, rrtype, &st)) == NULL)
		return st;
	res = a->res;
	if (st != DM_DNS_OK)
		goto done;
	while (res->data[cnt] != NULL)
		cnt++;
	if ((out = calloc(cnt, sizeof(*out))) == NULL)
		goto nomem;
	for (i = 0; i < cnt; i++) {
		out[i].len = (size_t)res->len[i];
		/* one spare byte so that an empty RDATA still allocates */
		if ((out[i].data = malloc(out[i].len + 1)) == NULL)
			goto nomem;
		memcpy(out[i].data, res->data[i], out[i].len);
		out[i].data[out[i].len] = '\0';
	}
	*rrs = out;
	*n = cnt;
	goto done;
nomem:
	dm_err("resolver: %s: out of memory", name);
	dm_rr_free(out, cnt);
	st = DM_DNS_TEMPFAIL;
done:
	resolver_put(a);
	return st;
}

void
dm_rr_free(dm_rr *rrs, size_t n)
{
	size_t i;

	if (rrs == NULL)
		return;
	for (i = 0; i < n; i++)
		free(rrs[i].data);
	free(rrs);
}

int
dm_txt_join(const unsigned char *p, size_t len, dm_txt *out)
{
	size_t i, total = 0, seg;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i += 1 + seg) {
		seg = p[i];
		if (seg > len - i - 1)
			return -1;
		total += seg;
	}
	if ((out->data = malloc(total + 1)) == NULL)
		return -2;
	out->len = 0;
	for (i = 0; i < len; i += 1 + seg) {
		seg = p[i];
		memcpy(out->data + out->len, p + i + 1, seg);
		out->len += seg;
	}
	out->data[out->len] = '\0';
	return 0;
}

dm_dns_status
dm_resolver_txt(dm_resolver *r, const char *name, dm_txt **recs, size_t *n)
{
	struct resolver_ans *a;
	const struct ub_result *res;
	dm_dns_status st;
	dm_txt *out = NULL;
	size_t cnt = 0, got = 0, i;
	int rc;

	*recs = NULL;
	*n = 0;
	if ((a = resolver_ask(r, name, RESOLVER_TYPE_TXT, &st)) == NULL)
		return st;
	res = a->res;
	if (st != DM_DNS_OK)
		goto done;
	while (res->data[cnt] != NULL)
		cnt++;
	if ((out = calloc(cnt, sizeof(*out))) == NULL)
		goto nomem;
	for (i = 0; i < cnt; i++) {
		rc = dm_txt_join((const unsigned char *)res->data[i],
		    (size_t)res->len[i], &out[got]);
		if (rc == -2)
			goto nomem;
		if (rc == -1)
			dm_info("resolver: %s: malformed TXT RDATA skipped",
			    name);
		else
			got++;
	}
	if (got == 0) {
		free(out);
		st = DM_DNS_NODATA;
		goto done;
	}
	*recs = out;
	*n = got;
	goto done;
nomem:
	dm_err("resolver: %s: out of memory", name);
	dm_txt_free(out, got);
	st = DM_DNS_TEMPFAIL;
done:
	resolver_put(a);
	return st;
}

void
dm_txt_free(dm_txt *recs, size_t n)
{
	size_t i;

	if (recs == NULL)
		return;
	for (i = 0; i < n; i++)
		free(recs[i].data);
	free(recs);
}

dm_dns_status
dm_resolver_exists(dm_resolver *r, const char *name)
{
	struct resolver_ans *a;
	const struct ub_result *res;
	dm_dns_status st;

	if ((a = resolver_ask(r, name, RESOLVER_TYPE_A, &st)) == NULL)
		return st;
	res = a->res;
	if (res->rcode == RESOLVER_RCODE_NXDOMAIN && !res->bogus)
		st = DM_DNS_NXDOMAIN;
	else if (res->rcode == RESOLVER_RCODE_NOERROR && !res->bogus)
		st = DM_DNS_OK;
	else
		st = DM_DNS_TEMPFAIL;
	resolver_put(a);
	return st;
}

dm_dns_status
dm_resolver_packet(dm_resolver *r, const char *name, int rrtype,
    unsigned char *buf, size_t buflen, size_t *outlen)
{
	struct resolver_ans *a;
	const struct ub_result *res;
	dm_dns_status st;
	size_t len;

	*outlen = 0;
	if ((a = resolver_ask(r, name, rrtype, &st)) == NULL)
		return st;
	res = a->res;
	if (res->answer_packet != NULL && res->answer_len > 0) {
		len = (size_t)res->answer_len;
		if (len > buflen) {
			dm_warn("resolver: %s/%d: reply of %zu bytes does not "
			    "fit in %zu", name, rrtype, len, buflen);
			st = DM_DNS_PERMFAIL;
		} else {
			memcpy(buf, res->answer_packet, len);
			*outlen = len;
		}
	} else if (st != DM_DNS_TEMPFAIL) {
		st = DM_DNS_TEMPFAIL;
	}
	resolver_put(a);
	return st;
}

const char *
dm_dns_status_str(dm_dns_status st)
{
	switch (st) {
	case DM_DNS_OK:		return "ok";
	case DM_DNS_NODATA:	return "nodata";
	case DM_DNS_NXDOMAIN:	return "nxdomain";
	case DM_DNS_TEMPFAIL:	return "tempfail";
	case DM_DNS_PERMFAIL:	return "permfail";
	}
	return "unknown";
}
