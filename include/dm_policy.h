/*
 * dm_policy.h - DMARC policy evaluation for one author domain: a pure
 * function from what was authenticated and what was published to a
 * verdict (RFC 7489 6.6, RFC 9989 4.7-4.8). No I/O here: the engine
 * gathers the inputs, so every rule can be tested from a table.
 */
#ifndef DM_POLICY_H
#define DM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dm_from.h"
#include "dm_record.h"
#include "dm_status.h"

typedef enum dm_dmarc_result {
	DM_DMARC_NONE = 0,
	DM_DMARC_PASS,
	DM_DMARC_FAIL,
	DM_DMARC_TEMPERROR,
	DM_DMARC_PERMERROR
} dm_dmarc_result;

typedef enum dm_disposition {
	DM_DISP_NONE = 0,
	DM_DISP_QUARANTINE,
	DM_DISP_REJECT
} dm_disposition;

/* The report schema's PolicyOverrideType values. */
typedef enum dm_reason_type {
	DM_REASON_FORWARDED = 0,
	DM_REASON_SAMPLED_OUT,
	DM_REASON_TRUSTED_FORWARDER,
	DM_REASON_MAILING_LIST,
	DM_REASON_LOCAL_POLICY,
	DM_REASON_OTHER,
	DM_REASON_POLICY_TEST_MODE
} dm_reason_type;

typedef struct dm_reason {
	dm_reason_type type;
	char comment[128];
} dm_reason;

#define DM_MAX_REASONS 4

/* Which tag of the record gave the policy. */
typedef enum dm_policy_tag {
	DM_TAG_P = 0,
	DM_TAG_SP,
	DM_TAG_NP
} dm_policy_tag;

/* What the engine learned about one author domain. */
typedef struct dm_policy_input {
	dm_status discovery;	/* DM_OK, DM_NOTFOUND or DM_TEMPFAIL */
	const dm_record *record;	/* with DM_OK */
	bool exact;		/* record published at the author domain */
	bool author_nxdomain;	/* the author domain does not exist */
	bool dkim_aligned_pass;
	bool spf_aligned_pass;
	bool aligned_tempfail;	/* an aligned identifier failed temporarily */
} dm_policy_input;

typedef struct dm_policy_opts {
	bool honor_pct;
	/* Uniform random numbers for pct sampling; injectable for tests. */
	uint32_t (*random)(void *arg);
	void *random_arg;
} dm_policy_opts;

typedef struct dm_policy_verdict {
	dm_dmarc_result result;
	dm_policy_tag tag;		/* meaningful with a record */
	dm_policy requested;		/* the policy of that tag */
	dm_disposition disposition;	/* after t= and pct step-downs */
	dm_reason reasons[DM_MAX_REASONS];
	size_t nreasons;
} dm_policy_verdict;

void dm_policy_evaluate(const dm_policy_input *in, const dm_policy_opts *o,
    dm_policy_verdict *out);

/* Add a reason (local overrides); false when the list is full. */
bool dm_policy_add_reason(dm_policy_verdict *v, dm_reason_type t,
    const char *comment);

/* Strictness order used to combine several author domains. */
int dm_policy_compare(const dm_policy_verdict *a, const dm_policy_verdict *b);

uint32_t dm_policy_random(void *arg);	/* the default source */

const char *dm_dmarc_result_str(dm_dmarc_result r);
const char *dm_disposition_str(dm_disposition d);
const char *dm_reason_type_str(dm_reason_type t);
const char *dm_policy_tag_str(dm_policy_tag t);	/* "p" "sp" "np" */

#endif
