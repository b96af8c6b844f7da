/*
 * report/rptsrc.h - the groups dmarc-report sends, as the counters left
 * them in Redis (see dm_redis.h for the keys), and the claim that makes
 * each report go out once.
 *
 * A group's life: listed (its period has ended) -> claimed (a lease in
 * P{dom}:claim:G, so two generators never build it at once; its report
 * id is fixed in P{dom}:state:G at the first claim and kept across
 * retries and crashes, so a report sent again carries the same id) ->
 * rows read -> sent -> done (rows, meta and state deleted, the group
 * leaves the index, a P{dom}:sent:G marker stays for RedisTTL) or
 * failed (lease dropped, tries counted, next attempt after a backoff).
 * A crash anywhere leaves the lease to expire and the data in place.
 */
#ifndef RPTSRC_H
#define RPTSRC_H

#include <stddef.h>
#include <stdint.h>

#include "dm_redis.h"
#include "dm_status.h"

typedef struct rpt_group {
	char domain[256];
	int64_t begin, end;
	char polid[17];
	char member[64];	/* "<begin>:<polid>" in the groups index */
} rpt_group;

/* The state a claim returns. */
typedef struct rpt_claim {
	char report_id[96];
	long tries;		/* failed attempts so far */
} rpt_claim;

typedef struct rpt_rowc {
	char *row;
	uint64_t count;
} rpt_rowc;

/*
 * A store of groups as dmarc-report sees it: Redis (below) or the local
 * journal (rptjsrc.h). The functions mean what rpt_src_* mean.
 */
typedef struct rpt_source {
	void *h;
	dm_status (*list)(void *h, int64_t now, const char *only_domain,
	    rpt_group **out, size_t *n);
	dm_status (*claim)(void *h, const rpt_group *g, const char *owner,
	    int64_t now, long lease_ms, rpt_claim *c);
	dm_status (*read)(void *h, const rpt_group *g, char **policy,
	    rpt_rowc **rows, size_t *n);
	dm_status (*done)(void *h, const rpt_group *g, const char *owner,
	    const char *report_id, long sent_ttl);
	dm_status (*failed)(void *h, const rpt_group *g, const char *owner,
	    int64_t now, long backoff_sec);
	dm_status (*renew)(void *h, const rpt_group *g, const char *owner,
	    long lease_ms);
	dm_status (*release)(void *h, const rpt_group *g, const char *owner);
} rpt_source;

/*
 * A fresh report id for g, claimed at now: letters and digits only, so
 * the attachment's file name (which allows no others) carries it
 * unchanged, as RFC 9990 requires. Unique per submitter and domain also
 * when counts that came late make a second report of the same group in
 * the same second: the microseconds of the clock are part of it.
 */
void rpt_report_id(char *out, size_t len, const rpt_group *g, int64_t now);

/* The Redis store as a source (r stays the caller's). */
void rpt_src_redis(dm_redis *r, rpt_source *out);

/* Groups whose period ended at or before now (optionally one domain). */
dm_status rpt_src_list(dm_redis *r, int64_t now, const char *only_domain,
    rpt_group **out, size_t *n);
/*
 * Claim for lease_ms. DM_OK: ours (c filled). DM_NOTFOUND: someone else
 * holds it, or its backoff has not ended, or it is gone.
 */
dm_status rpt_src_claim(dm_redis *r, const rpt_group *g, const char *owner,
    int64_t now, long lease_ms, rpt_claim *c);
/* The policy text and every row with its count (one report's memory). */
dm_status rpt_src_read(dm_redis *r, const rpt_group *g, char **policy,
    rpt_rowc **rows, size_t *n);
void rpt_src_rows_free(rpt_rowc *rows, size_t n);
/* Sent: the data goes. DM_NOTFOUND when the lease was lost meanwhile. */
dm_status rpt_src_done(dm_redis *r, const rpt_group *g, const char *owner,
    const char *report_id, long sent_ttl);
/* Not sent: tries+1, next attempt after backoff_sec, lease dropped. */
dm_status rpt_src_failed(dm_redis *r, const rpt_group *g, const char *owner,
    int64_t now, long backoff_sec);
/*
 * The lease runs lease_ms from now again: called before every hand-over,
 * so that a slow send never outlives it and lets another generator in.
 * DM_NOTFOUND when it was lost (then the caller must not send).
 */
dm_status rpt_src_renew(dm_redis *r, const rpt_group *g, const char *owner,
    long lease_ms);
/* Not built at all this run (--dry-run): the lease dropped, nothing else. */
dm_status rpt_src_release(dm_redis *r, const rpt_group *g, const char *owner);

#endif
