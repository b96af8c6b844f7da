/*
 * dm_record.h - the DMARC policy record (RFC 7489 6.3, RFC 9989 4.7):
 * bytes in, a value out.
 *
 * The parser applies the invalid-record rules itself, so that callers only
 * see "a usable record" (DM_OK), "not a DMARC record" (DM_NOTFOUND: does
 * not start with v=DMARC1, or no usable policy and no usable rua) or a
 * hard error (DM_PERMFAIL, for syntax so broken nothing can be used).
 */
#ifndef DM_RECORD_H
#define DM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dm_status.h"

typedef enum dm_policy {
	DM_POLICY_NONE = 0,
	DM_POLICY_QUARANTINE,
	DM_POLICY_REJECT
} dm_policy;

typedef enum dm_align_mode {
	DM_ALIGN_RELAXED = 0,
	DM_ALIGN_STRICT
} dm_align_mode;

typedef enum dm_psd {
	DM_PSD_UNSET = 0,	/* psd=u, or absent */
	DM_PSD_YES,
	DM_PSD_NO
} dm_psd;

/* One rua/ruf URI with its optional !size limit (0 = no limit). */
typedef struct dm_uri {
	char *uri;		/* as published, without the !size suffix */
	uint64_t max_size;	/* in bytes */
} dm_uri;

typedef struct dm_urilist {
	dm_uri *v;
	size_t n;
} dm_urilist;

typedef struct dm_record {
	dm_policy p;
	dm_policy sp;		/* = p when absent */
	dm_policy np;		/* = sp when absent */
	bool has_p;		/* p= was present and valid */
	bool has_sp;
	bool has_np;
	bool has_pct;
	bool p_defaulted;	/* p missing/invalid, treated as none */
	int pct;		/* 0..100, 100 when absent */
	bool testing;		/* t=y */
	dm_psd psd;
	dm_align_mode adkim;
	dm_align_mode aspf;
	char fo[16];		/* as published (validated), "0" when absent */
	char rf[16];		/* "afrf" when absent */
	uint32_t ri;		/* seconds, 86400 when absent */
	dm_urilist rua;		/* syntactically valid URIs only */
	dm_urilist ruf;
} dm_record;

/*
 * Parse one TXT record. On DM_OK *out is a new record (dm_record_free).
 * err gets a short reason for NOTFOUND/PERMFAIL and for tags ignored.
 */
dm_status dm_record_parse(const char *txt, size_t len, dm_record **out,
    char *err, size_t errlen);
void dm_record_free(dm_record *rec);

/* Does a TXT record claim to be DMARC (starts with "v=DMARC1")? */
bool dm_record_is_dmarc(const char *txt, size_t len);

/* A rua= or ruf= value: comma-separated URIs with optional !size[kmgt]. */
dm_status dm_urilist_parse(const char *s, size_t len, dm_urilist *out);
void dm_urilist_clear(dm_urilist *l);

const char *dm_policy_str(dm_policy p);	/* "none" "quarantine" "reject" */
const char *dm_align_mode_str(dm_align_mode m);	/* "r" "s" */
const char *dm_psd_str(dm_psd p);		/* "u" "y" "n" */

#endif
