/*
 * dm_spf.h - SPF (RFC 7208), an evaluator of our own (lib/spf.c, with
 * lib/spfrec.c and lib/spfmacro.c), its DNS through dm_resolver.
 *
 * One dm_spf is made at start-up and shared by all threads; a check
 * allocates only its own state.
 */
#ifndef DM_SPF_H
#define DM_SPF_H

#include <stddef.h>

#include "dm_resolver.h"
#include "dm_status.h"
#include "dm_from.h"

typedef struct dm_spf dm_spf;

typedef enum dm_spf_result {
	DM_SPF_NONE = 0,
	DM_SPF_NEUTRAL,
	DM_SPF_PASS,
	DM_SPF_FAIL,
	DM_SPF_SOFTFAIL,
	DM_SPF_TEMPERROR,
	DM_SPF_PERMERROR
} dm_spf_result;

typedef enum dm_spf_scope {
	DM_SPF_SCOPE_MFROM = 0,
	DM_SPF_SCOPE_HELO
} dm_spf_scope;

typedef struct dm_spf_outcome {
	dm_spf_result result;
	dm_spf_scope scope;
	char domain[DM_DOMAIN_MAX];	/* the identity's domain, normalised */
	char identity[512];		/* smtp.mailfrom or smtp.helo value */
	char comment[256];		/* why this result, for logs */
} dm_spf_outcome;

dm_spf *dm_spf_new(dm_resolver *r, char *err, size_t errlen);
void dm_spf_free(dm_spf *s);

/*
 * ip: the client address as text (v4 or v6); helo: as given (may be NULL);
 * mail_from: the envelope address without <> (NULL or "" = null sender,
 * then the HELO identity is checked, RFC 7489 3.1.2). Always fills out;
 * returns DM_OK.
 */
dm_status dm_spf_check(dm_spf *s, const char *ip, const char *helo,
    const char *mail_from, dm_spf_outcome *out);

/*
 * As dm_spf_check, and on fail the explanation of exp= (RFC 7208 6.2)
 * in exp ("" when there is none); DMARC does not need it, so
 * dm_spf_check does not ask DNS for it.
 */
dm_status dm_spf_check_exp(dm_spf *s, const char *ip, const char *helo,
    const char *mail_from, char *exp, size_t explen, dm_spf_outcome *out);

/* %{r} of explanations (RFC 7208 7.3): this host's name; "unknown" until
 * set. Call before the dm_spf is shared. */
void dm_spf_set_receiver(dm_spf *s, const char *name);

/*
 * A domain name in RDATA (MX after its preference, PTR; uncompressed, as
 * libunbound gives it) to text in out: 0, or -1 when it is no host name
 * (a label over 63 bytes or past the end, a byte that is a control, a
 * space, 8-bit, '.' or '\\', unterminated, the root, or too long for out).
 * The parser of the names SPF looks up next, for its fuzz target.
 */
int dm_spf_wire_name(const unsigned char *p, size_t len, char *out,
    size_t outlen);

const char *dm_spf_result_str(dm_spf_result r);	/* "pass" ... */
const char *dm_spf_scope_str(dm_spf_scope s);	/* "mfrom" "helo" */

#endif
