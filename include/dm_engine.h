/*
 * dm_engine.h - evaluates one message end to end: SPF, every DKIM
 * signature, the From field(s), policy discovery, alignment, policy.
 *
 * The engine (resolver, SPF server, DKIM library, org-domain method) is
 * built once from a config and shared by all threads. A dm_msg is fed in
 * the order a milter sees a message, and ends in a dm_verdict. The milter
 * and dmarc-check both use exactly this path.
 */
#ifndef DM_ENGINE_H
#define DM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dm_config.h"
#include "dm_dkim.h"
#include "dm_orgdomain.h"
#include "dm_policy.h"
#include "dm_spf.h"
#include "dm_status.h"

typedef struct dm_engine dm_engine;
typedef struct dm_msg dm_msg;

typedef enum dm_from_state {
	DM_FROM_ONE = 0,		/* one field, one mailbox */
	DM_FROM_MISSING,		/* no From field */
	DM_FROM_SEVERAL_FIELDS,		/* more than one From field */
	DM_FROM_SEVERAL_MAILBOXES,	/* one field, several mailboxes */
	DM_FROM_UNUSABLE		/* no mailbox with a usable domain */
} dm_from_state;

/* One author domain and its own evaluation. */
typedef struct dm_author {
	char domain[DM_DOMAIN_MAX];
	dm_status discovery;		/* DM_OK, DM_NOTFOUND, DM_TEMPFAIL */
	dm_discovery disc;		/* policy domain and record */
	bool spf_aligned;		/* SPF domain aligned (any result) */
	bool *dkim_aligned;		/* per signature, d= aligned */
	dm_policy_verdict pv;
} dm_author;

/* What the From field(s) showed besides their author domains. */
typedef enum dm_from_fault {
	DM_FROMFAULT_NONE = 0,
	DM_FROMFAULT_MALFORMED,	/* not RFC 5322; its domains were recovered */
	DM_FROMFAULT_DECEPTIVE	/* shows a domain that is no domain name */
} dm_from_fault;

typedef struct dm_verdict {
	dm_from_state from_state;
	dm_from_fault from_fault;
	const char *from_why;		/* static text with a fault, or NULL */
	/*
	 * Set when the From rules themselves refused the message
	 * (MalformedFromAction, NoAuthorAction): the reply's text.
	 */
	const char *from_refused;
	dm_dmarc_result result;		/* the decisive author's result */
	dm_disposition disposition;	/* the strictest of all authors */
	size_t decisive;		/* index into authors; 0 if none */
	dm_author *authors;
	size_t nauthors;
	dm_spf_outcome spf;
	const dm_dkim_sig *const *sigs;	/* valid while the dm_msg lives */
	size_t nsigs;
	char errors[4][320];
	size_t nerrors;
} dm_verdict;

dm_engine *dm_engine_new(dm_config *cfg, char *err, size_t errlen);
void dm_engine_free(dm_engine *e);
const dm_config *dm_engine_config(const dm_engine *e);
/* Is the client in IgnoreHosts (its mail is not evaluated at all)? */
bool dm_engine_ignored_host(const dm_engine *e, const char *ip);
/* For tests: the pct sampling source. */
void dm_engine_set_random(dm_engine *e, uint32_t (*fn)(void *), void *arg);

dm_msg *dm_msg_new(dm_engine *e, const char *qid);
void dm_msg_free(dm_msg *m);
/* Client address as text; helo may be NULL. */
dm_status dm_msg_client(dm_msg *m, const char *ip, const char *helo);
/* Envelope sender, with or without <>; NULL, "" and "<>" are null. */
dm_status dm_msg_mail_from(dm_msg *m, const char *addr);
/*
 * One header field: name, and the raw value after the colon (leading
 * white space and folding kept; line breaks LF or CRLF).
 */
dm_status dm_msg_header(dm_msg *m, const char *name, const char *value);
dm_status dm_msg_eoh(dm_msg *m);
/* Body bytes in CRLF form, any chunking. */
dm_status dm_msg_body(dm_msg *m, const unsigned char *p, size_t len);
/* Evaluate. *out stays owned by m. DM_OK. */
dm_status dm_msg_eom(dm_msg *m, const dm_verdict **out);


const char *dm_from_state_str(dm_from_state s);
const char *dm_from_fault_str(dm_from_fault f);	/* "none" "malformed" .. */

#endif
