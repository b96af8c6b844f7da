/*
 * dm_status.h - the status codes every lib/ module returns.
 *
 * Temporary and permanent failure are kept apart everywhere, because they
 * become different things on the wire: a DNS timeout must become
 * "temperror" (and perhaps a 451), a malformed record "permerror" or "none".
 */
#ifndef DM_STATUS_H
#define DM_STATUS_H

typedef enum dm_status {
	DM_OK = 0,	/* done, the answer is in the out-parameters */
	DM_NOTFOUND,	/* definitive: nothing there (no record, no domain) */
	DM_TEMPFAIL,	/* try again later: timeout, SERVFAIL, resource */
	DM_PERMFAIL	/* definitive error: malformed input, bad config */
} dm_status;

/*
 * There is no "out of memory" status: an allocation either succeeds or
 * does not return (dm_log_oom, exit 75), Postfix's rule, so no caller
 * has a path for it to get wrong.
 */

const char *dm_status_str(dm_status st);

#endif
