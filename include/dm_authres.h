/*
 * dm_authres.h - the Authentication-Results header field (RFC 8601)
 * that the milter adds and dmarc-check prints.
 */
#ifndef DM_AUTHRES_H
#define DM_AUTHRES_H

#include <stddef.h>

#include "dm_engine.h"
#include "dm_status.h"

/*
 * The field body (without "Authentication-Results:"), folded with
 * "\r\n\t" or "\n\t" as eol says, as a malloc'ed string (*len, may be
 * NULL, its length). It is as long as the verdict needs: a caller that
 * bounds what it adds to a message decides what to do past its bound.
 */
char *dm_authres_format(const dm_verdict *v, const char *authserv_id,
    const char *eol, size_t *len);

/*
 * The authserv-id of an existing Authentication-Results field body, into
 * out (lower-cased). DM_PERMFAIL when there is none to read. The milter
 * deletes fields carrying its own authserv-id: they are forgeries.
 */
dm_status dm_authres_servid(const char *value, char *out, size_t outlen);

/*
 * The spf= result of a field body, with its smtp.mailfrom or smtp.helo
 * identity (for TrustedAuthservIDs: an MTA behind a relay cannot check
 * SPF itself, the border MTA's result is the one that counts). The
 * caller has checked the authserv-id. DM_NOTFOUND: no spf= result;
 * DM_PERMFAIL: one that cannot be read (unknown result, no identity).
 */
dm_status dm_authres_read_spf(const char *value, dm_spf_outcome *out);

#endif
