/*
 * dm_action.h - what the MTA is told to do with a message, from the
 * verdict and the configuration: accept, quarantine (header, hold or
 * both), reject with 550 5.7.1, or defer with 451 4.7.x. Pure: the milter
 * only carries the answer out.
 */
#ifndef DM_ACTION_H
#define DM_ACTION_H

#include <stdbool.h>

#include "dm_config.h"
#include "dm_engine.h"

typedef enum dm_action_kind {
	DM_ACT_ACCEPT = 0,
	DM_ACT_QUARANTINE,
	DM_ACT_REJECT,
	DM_ACT_TEMPFAIL
} dm_action_kind;

typedef struct dm_action {
	dm_action_kind kind;
	bool add_header;	/* QuarantineHeader */
	bool hold;		/* the MTA's quarantine */
	char rcode[4];		/* "550", "451" */
	char xcode[8];		/* "5.7.1", "4.7.5" */
	char text[384];		/* reply text, printable ASCII only */
} dm_action;

void dm_action_decide(const dm_config *c, const dm_verdict *v,
    dm_action *out);
/* For an internal failure: OnInternalError. */
void dm_action_internal_error(const dm_config *c, dm_action *out);

const char *dm_action_kind_str(dm_action_kind k);

#endif
