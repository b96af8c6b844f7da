/*
 * rptxml.h - one DMARC aggregate report as an XML document, in the
 * format of RFC 7489 Appendix C or of RFC 9990, from the canonical
 * policy and row texts the counters store (dm_row.h).
 *
 * Written with libxml2's xmlTextWriter: every text is escaped, and bytes
 * that XML 1.0 cannot carry (control characters other than tab and
 * newline, invalid UTF-8, U+FFFE/U+FFFF) become U+FFFD first, so no
 * selector, comment or domain can break the document.
 *
 * Both formats validate against their schema (standards/
 * rfc7489-appendix-c-fixed-nons.xsd, dmarc-2.0-draft32.xsd). Mapping:
 * - RFC 7489: version 1.0; policy_published domain adkim aspf p sp pct fo
 *   (absent tags get their defaults); envelope_from is always written
 *   (the schema requires it; empty for a null MAIL FROM); the source IP
 *   of IPv6 clients in the full 8-group form the schema's pattern wants;
 *   reason policy_test_mode (not in that schema) becomes "other" with
 *   "policy_test_mode" leading the comment.
 * - RFC 9990: namespace urn:ietf:params:xml:ns:dmarc-2.0, version 1.0,
 *   generator, policy_published domain discovery_method p sp np fo
 *   adkim aspf testing (the schema has no pct and no psd); disposition
 *   "pass" for a row that passed DMARC with nothing applied; reasons
 *   forwarded and sampled_out (not in that schema) become "other" the
 *   same way; SPF scope written only for "mfrom" (the only value the
 *   schema allows); IPv6 in RFC 5952 form (the schema takes any string).
 * - Both: an IPv4-mapped IPv6 client is reported as IPv4 (as dm_cidr
 *   matches it); at most 100 DKIM results per record, passes first when
 *   a row has more (RFC 9990, "DKIM Signatures in Aggregate Reports").
 */
#ifndef RPTXML_H
#define RPTXML_H

#include <stddef.h>
#include <stdint.h>

#include "dm_status.h"

enum rpt_format { RPT_RFC7489, RPT_RFC9990 };

typedef struct rpt_meta {
	const char *org_name, *email;
	const char *extra_contact;	/* may be NULL */
	const char *report_id;
	const char *generator;		/* RFC 9990 only; may be NULL */
	int64_t begin, end;		/* UTC seconds; end exclusive: the
					   date_range end written is end - 1 */
	const char *domain;		/* the policy domain */
	const char *policy;		/* canonical policy text (dm_row.h) */
	enum rpt_format format;
} rpt_meta;

typedef struct rpt_row {
	const char *row;		/* canonical row text (dm_row.h) */
	uint64_t count;
} rpt_row;

/* What was written; the caller logs it. */
typedef struct rpt_stats {
	size_t records;			/* <record> elements */
	size_t skipped;			/* rows not written: count 0, or a
					   source that is no IP address (a
					   connection without one) */
	uint64_t messages;		/* sum of the written counts */
} rpt_stats;

/*
 * Receives the document piece by piece; returns 0, or -1 to stop the
 * writer (which then fails with "write error").
 */
typedef int (*rpt_sink)(void *ctx, const char *buf, size_t len);

/*
 * The whole document into a malloc'ed buffer (*out, NUL-terminated,
 * *len bytes without the NUL). DM_OK, or DM_PERMFAIL with a message in
 * err (a row or policy text that cannot be read, a missing meta field, no
 * row left to report); *out is then NULL. st may be NULL.
 */
dm_status rpt_xml_write(const rpt_meta *m, const rpt_row *rows, size_t n,
    char **out, size_t *len, rpt_stats *st, char *err, size_t errlen);

/*
 * The same document streamed into sink (to gzip it on the fly): as
 * rpt_xml_write, and DM_TEMPFAIL when the sink refused a piece. On any
 * failure the sink has received part of a document: discard it.
 */
dm_status rpt_xml_stream(const rpt_meta *m, const rpt_row *rows, size_t n,
    rpt_sink sink, void *ctx, rpt_stats *st, char *err, size_t errlen);

#endif
