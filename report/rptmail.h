/*
 * report/rptmail.h - the mail that carries an aggregate report (RFC 7489
 * 7.2.1.1, RFC 9990 "Email"), the error report sent instead when the
 * report fits no destination (RFC 7489 7.2.2), and the gzip of the XML.
 *
 * Everything is deterministic: the same report built twice (a retry
 * after a failed send) gives the same bytes except for Date, so the
 * Message-ID, Subject, Report-ID and attachment filename of a resent
 * report equal the first attempt's.
 *
 * What is accepted (anything else: -1 with errno EINVAL, nothing built):
 * - submitter, domain, message_id_domain: DNS names in ASCII (A-labels),
 *   labels of letters, digits, '-' and '_' of 1..63 characters, dot
 *   separated, at most 253 characters, no trailing dot.
 * - report_id: 1..128 characters of letters, digits, '.', '-', '_', not
 *   beginning or ending with '.', no "..": a dot-atom-text, so a valid
 *   RFC 9990 ridfmt and a valid Message-ID left part. No '@' (that would
 *   break the Message-ID), no space (that would break the Subject).
 * - to[]: at least one addr-spec local@domain, local part of RFC 5322
 *   atext and '.' (no quoted strings), domain as above.
 * - from: a From header value, printable ASCII and spaces only (so a
 *   display name is allowed), 1..900 characters.
 * - Submitting-URIs of the error report: printable ASCII, no white space,
 *   no comma, 1..900 characters.
 * CR, LF, NUL, other control bytes and 8-bit bytes are refused everywhere.
 *
 * The attachment's filename is "S!D!begin!end!U.xml.gz": S the submitter,
 * D the policy domain, begin the first second and end the last second of
 * the period (end - 1, the same as the XML's date_range end), U the
 * report id's letters and digits (the RFC's unique-id = 1*(ALPHA/DIGIT)
 * allows nothing else; for an id of letters and digits only U is the id).
 */
#ifndef RPTMAIL_H
#define RPTMAIL_H

#include <stddef.h>
#include <stdint.h>

#include "dm_status.h"

/* Base64 line length, RFC 2045 6.8: 57 bytes of input a line. */
#define RPT_MAIL_B64_LINE 76

/* Bytes n bytes take as base64 with a CRLF after each line. */
size_t rpt_mail_b64_size(size_t n);

typedef struct rpt_mail {
	const char *from;		/* ReportFrom, the From header value */
	const char *const *to;		/* verified rua addresses, in order */
	size_t nto;
	const char *submitter;		/* S: the reporting domain */
	const char *domain;		/* D: the policy domain */
	const char *report_id;
	int64_t begin, end;		/* UTC seconds, end exclusive */
	int64_t date;			/* for the Date header, UTC seconds */
	const char *message_id_domain;
	const unsigned char *gz;	/* the report, gzip'ed (rpt_gzip) */
	size_t gzlen;
} rpt_mail;

/*
 * gzip (RFC 1952) of len bytes of xml: one deflate stream with a gzip
 * header carrying name_in_gzip (may be NULL: no name), mtime 0 and OS
 * "unknown", so equal input gives equal bytes. *out is malloc'ed.
 * DM_OK, or DM_PERMFAIL (errno EIO) when zlib fails.
 */
dm_status rpt_gzip(const char *xml, size_t len, const char *name_in_gzip,
    unsigned char **out, size_t *outlen);

/*
 * The attachment filename, "S!D!begin!end!U.xml.gz" (see above). DM_OK,
 * or DM_PERMFAIL with errno EINVAL (invalid submitter, domain, id or
 * period) or ERANGE (size too small; 700 bytes always suffice).
 */
dm_status rpt_mail_filename(const rpt_mail *m, char *buf, size_t size);

/*
 * The complete report mail, CRLF line ends, lines at most 78 characters
 * where folding allows: From, To (every address), Subject "Report Domain:
 * D Submitter: S Report-ID: <ID>", Date, Message-ID
 * <ID.begin@message_id_domain>, Auto-Submitted, MIME-Version,
 * multipart/mixed of a short text/plain part and the application/gzip
 * attachment in base64. *eml is malloc'ed and NUL terminated (*len
 * without the NUL). DM_OK, or DM_PERMFAIL with errno EINVAL (a value
 * above is not accepted, or begin >= end, or no gz).
 */
dm_status rpt_mail_build(const rpt_mail *m, char **eml, size_t *len);

/*
 * The RFC 7489 7.2.2 error report for a report of report_size bytes that
 * fit no destination: to m->to (every mailto address listed, the caller's
 * choice), the same Subject as the report, Message-ID
 * <ID.begin.error@message_id_domain>, multipart/mixed of a text/plain
 * part with the fields Report-Date (m->date), Report-Domain, Report-ID,
 * Report-Size, Submitter, Submitting-URI (uris, the URIs tried, with
 * their size limits as published) and a second text/plain part saying
 * so in words. m->gz is not used. Returns as rpt_mail_build.
 */
dm_status rpt_mail_error_build(const rpt_mail *m, uint64_t report_size,
    const char *const *uris, size_t nuris, char **eml, size_t *len);

#endif
