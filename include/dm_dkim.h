/*
 * dm_dkim.h - DKIM verification (RFC 6376, RFC 8463) with libopendkim,
 * its DNS through dm_resolver.
 *
 * One dm_dkim (the DKIM_LIB) is shared; a dm_dkim_msg verifies one
 * message fed as it arrives: headers, then body chunks, then the end.
 * Every signature is reported, not only the first good one.
 */
#ifndef DM_DKIM_H
#define DM_DKIM_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_from.h"
#include "dm_resolver.h"
#include "dm_status.h"

typedef struct dm_dkim dm_dkim;
typedef struct dm_dkim_msg dm_dkim_msg;

typedef enum dm_dkim_result {
	DM_DKIM_NONE = 0,	/* used only for "no signature" */
	DM_DKIM_PASS,
	DM_DKIM_FAIL,
	DM_DKIM_NEUTRAL,
	DM_DKIM_POLICY,
	DM_DKIM_TEMPERROR,
	DM_DKIM_PERMERROR
} dm_dkim_result;

typedef struct dm_dkim_sig {
	char domain[DM_DOMAIN_MAX];	/* d=, normalised ("" if missing) */
	char selector[128];		/* s= */
	char algorithm[32];		/* "rsa-sha256", "ed25519-sha256" */
	dm_dkim_result result;
	char error[128];		/* the library's reason when not pass */
} dm_dkim_sig;

dm_dkim *dm_dkim_new(dm_resolver *r, char *err, size_t errlen);
void dm_dkim_free(dm_dkim *d);

/*
 * A signature whose l= leaves part of the body unsigned: false (the
 * default) reports it as DM_DKIM_POLICY with the reason in error[], true
 * lets it pass as RFC 6376 3.5 reads. Set before the first message.
 */
void dm_dkim_set_partial_pass(dm_dkim *d, bool accept);

/* qid: for log lines only (may be NULL). */
dm_dkim_msg *dm_dkim_msg_new(dm_dkim *d, const char *qid);
void dm_dkim_msg_free(dm_dkim_msg *m);

/*
 * One header field exactly as received, "Name: value" with any folding
 * (CRLF + WSP) inside but without the final CRLF.
 */
dm_status dm_dkim_header(dm_dkim_msg *m, const char *field, size_t len);
dm_status dm_dkim_eoh(dm_dkim_msg *m);
/* Body bytes in CRLF form, any chunking. */
dm_status dm_dkim_body(dm_dkim_msg *m, const unsigned char *p, size_t len);
/* Verify. Afterwards the signatures can be read. */
dm_status dm_dkim_eom(dm_dkim_msg *m);

size_t dm_dkim_nsigs(const dm_dkim_msg *m);
const dm_dkim_sig *dm_dkim_sig_at(const dm_dkim_msg *m, size_t i);

const char *dm_dkim_result_str(dm_dkim_result r);	/* "pass" ... */

#endif
