/*
 * dm_row.h - the aggregate-report row a message belongs to, and the
 * policy and period it is counted under, as canonical texts: equal rows
 * give equal bytes, so a store can count them as hash fields.
 *
 * Texts are "key=value" pairs joined by ';'. Values are escaped: every
 * byte outside [A-Za-z0-9.@_+-] is written %XX, so ';' ',' '/' '='
 * inside a value (a selector, a reason comment) cannot forge structure.
 *
 * Row keys: ip hf (header_from) ef (envelope_from domain, may be empty)
 * et (envelope_to domain, only with ReportEnvelopeTo) disp dkim spf
 * (DMARC-aligned results) r (reasons: type/comment, comma-separated)
 * ad (DKIM results: domain/selector/result, comma-separated)
 * as (SPF result: domain/scope/result).
 * Policy keys: p sp np pct t adkim aspf fo psd rua ruf (URIs with
 * their !size, comma-separated) dm (discovery method).
 */
#ifndef DM_ROW_H
#define DM_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dm_engine.h"
#include "dm_status.h"
#include "dm_update.h"

typedef struct dm_row_ctx {
	const char *ip;
	const char *envelope_to;	/* domain, or NULL (not reported) */
	int64_t now;			/* UTC seconds */
	int64_t period;			/* seconds, a divisor of 86400 */
	bool honor_ri;			/* a record's ri= under period wins */
	const char *method;		/* "treewalk" or "psl" */
} dm_row_ctx;

/*
 * One update (writer and seq left empty) per policy domain whose record
 * has a rua: the row of the first author evaluated under it (two
 * authors under one policy domain count once), with its policy text and
 * period. *n may be 0. Free each with dm_update_clear and the array
 * with free().
 */
dm_status dm_row_build(const dm_verdict *v, const dm_row_ctx *c,
    dm_update **out, size_t *n);

/* The period containing now: [*begin, *end). ri 0 means "none". */
void dm_row_period(int64_t now, int64_t period, uint32_t ri, bool honor_ri,
    int64_t *begin, int64_t *end);

/*
 * Reading texts back (the report writer): the raw (still escaped) value
 * of key in text, into out; false when absent or too long for out. List
 * values are split at ',' and '/' before each part is unescaped with
 * dm_hex_decode (dm_hex.h).
 */
bool dm_row_get(const char *text, const char *key, char *out, size_t len);

#endif
