/*
 * dm_spfrec.h - one SPF record's syntax (RFC 7208 4.5, 4.6.1, 5, 6):
 * the bytes of the TXT record in, the terms out, or permerror with the
 * reason. Pure: no DNS, no macro expansion (dm_spfmacro.h does that).
 *
 * The whole record is checked before anything of it is evaluated
 * (4.6.1): a syntax error anywhere is permerror, even after "all".
 */
#ifndef DM_SPFREC_H
#define DM_SPFREC_H

#include <stddef.h>

#include "dm_status.h"

typedef enum dm_spf_mech {
	DM_SPFM_ALL = 0,
	DM_SPFM_INCLUDE,
	DM_SPFM_A,
	DM_SPFM_MX,
	DM_SPFM_PTR,
	DM_SPFM_IP4,
	DM_SPFM_IP6,
	DM_SPFM_EXISTS
} dm_spf_mech;

/* One directive: a qualifier and a mechanism. */
typedef struct dm_spf_term {
	dm_spf_mech mech;
	char qual;		/* '+' '-' '~' '?' ('+' when none given) */
	const char *spec;	/* its domain-spec in the record, or NULL */
	size_t speclen;
	int cidr4, cidr6;	/* 32 and 128 when not given */
	unsigned char net[16];	/* ip4: 4 bytes, ip6: 16 */
} dm_spf_term;

typedef struct dm_spfrec dm_spfrec;

/* RFC 7208 4.5: "v=spf1" in any case, then a space or the end. */
int dm_spfrec_is_v1(const char *txt, size_t len);

/*
 * Parse one record (len bytes, may hold NULs: they are a syntax error).
 * DM_OK and *out, or DM_PERMFAIL with the reason in why.
 */
dm_status dm_spfrec_parse(const char *txt, size_t len, dm_spfrec **out,
    char *why, size_t whylen);
void dm_spfrec_free(dm_spfrec *r);

size_t dm_spfrec_nterms(const dm_spfrec *r);
const dm_spf_term *dm_spfrec_term(const dm_spfrec *r, size_t i);

/*
 * The domain-spec of redirect= (NULL when absent, or ignored because the
 * record has an "all" mechanism, RFC 7208 5.1) and of exp= (NULL when
 * absent). *len gets its length.
 */
const char *dm_spfrec_redirect(const dm_spfrec *r, size_t *len);
const char *dm_spfrec_exp(const dm_spfrec *r, size_t *len);

#endif
