/*
 * dm_override.h - local policy overrides of a DMARC disposition, each
 * with the report schema's reason: IgnoreDomains (local_policy),
 * TrustedForwarders (trusted_forwarder), mailing lists (mailing_list,
 * RFC 9989 7.4), RejectPolicy quarantine and Mode monitor (local_policy).
 */
#ifndef DM_OVERRIDE_H
#define DM_OVERRIDE_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_config.h"
#include "dm_policy.h"
#include "dm_status.h"

typedef struct dm_override dm_override;

typedef struct dm_override_ctx {
	const char *client_ip;	/* may be NULL */
	bool mailing_list;	/* List-Id or List-Post present */
} dm_override_ctx;

/* Parses the lists of c once. NULL with err on a bad list. */
dm_override *dm_override_new(const dm_config *c, char *err, size_t errlen);
void dm_override_free(dm_override *o);

/* Adjust one author domain's verdict in place. */
void dm_override_apply(const dm_override *o, const dm_override_ctx *ctx,
    const char *author_domain, dm_policy_verdict *v);

/* Is the connection's client in IgnoreHosts? */
bool dm_override_ignored_host(const dm_override *o, const char *ip);

#endif
