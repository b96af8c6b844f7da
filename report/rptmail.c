/*
 * report/rptmail.c - gzip of a report and the RFC 5322/MIME message that
 * carries it (see rptmail.h for what is accepted and why). Every header
 * value is built from checked pieces only, so no input can add a header
 * line or a MIME part.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "dm_buf.h"
#include "dm_hash.h"
#include "dm_log.h"
#include "rptmail.h"

#define LINE_MAX_SOFT 78	/* RFC 5322 2.1.1, without the CRLF */
#define TEXT_WIDTH 72		/* the human-readable text */
#define VALUE_MAX 900		/* from, one URI */
#define ID_MAX 128

/* --- what is accepted -------------------------------------------------- */

static bool
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* DNS name: LDH and '_' labels of 1..63, dot separated, at most 253. */
static bool
valid_domain(const char *s)
{
	size_t label = 0, total = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++, total++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && total <= 253;
}

/* dot-atom-text of letters, digits, '-', '_'. */
static bool
valid_id(const char *s)
{
	size_t n = 0;
	char prev = '.';

	if (s == NULL)
		return false;
	for (; *s != '\0'; prev = *s++, n++) {
		if (*s == '.') {
			if (prev == '.')
				return false;
		} else if (!is_alnum((unsigned char)*s) && *s != '-' &&
		    *s != '_')
			return false;
	}
	return n > 0 && n <= ID_MAX && prev != '.';
}

static bool
is_atext(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~",
	    c) != NULL);
}

/* local@domain, local a dot-atom-text of at most 64. */
static bool
valid_addr(const char *s)
{
	const char *at;
	size_t i, n;

	if (s == NULL || (at = strrchr(s, '@')) == NULL)
		return false;
	n = (size_t)(at - s);
	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i]))
			return false;
	}
	return valid_domain(at + 1);
}

/* Printable ASCII; spaces allowed or not. */
static bool
valid_text(const char *s, bool spaces)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; *s != '\0'; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c > 0x7e || (c == ' ' && !spaces))
			return false;
	}
	return n > 0 && n <= VALUE_MAX;
}

static bool
valid_uri(const char *s)
{
	return valid_text(s, false) && strchr(s, ',') == NULL;
}

/* Years of four digits (RFC 5322 3.3 wants at least four). */
#define TIME_MAX INT64_C(253402300799)	/* 9999-12-31 23:59:59 */

static bool
valid_common(const rpt_mail *m)
{
	size_t i;

	if (m == NULL || !valid_text(m->from, true) || m->to == NULL ||
	    m->nto == 0 || !valid_domain(m->submitter) ||
	    !valid_domain(m->domain) || !valid_id(m->report_id) ||
	    !valid_domain(m->message_id_domain) || m->begin < 0 ||
	    m->end <= m->begin || m->end > TIME_MAX || m->date < 0 ||
	    m->date > TIME_MAX)
		return false;
	for (i = 0; i < m->nto; i++)
		if (!valid_addr(m->to[i]))
			return false;
	return true;
}

/* --- dates ------------------------------------------------------------- */

static bool
utc(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;

	return (int64_t)tt == t && gmtime_r(&tt, tm) != NULL;
}

/* RFC 5322 3.3, in English whatever the locale: "Fri, 01 Mar 2024 ..." */
static void
fmt_date(int64_t t, char out[80])
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (!utc(t, &tm)) {
		strcpy(out, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(out, 80, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "2024-03-01 00:00:00" */
static void
fmt_utc(int64_t t, char out[80])
{
	struct tm tm;

	if (!utc(t, &tm)) {
		strcpy(out, "1970-01-01 00:00:00");
		return;
	}
	snprintf(out, 80, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* --- headers and text -------------------------------------------------- */

/*
 * "Name: item0<sep> item1<sep> ..." folded before an item that would
 * take the line past 78 columns (the separator stays on the line it
 * ends). An item longer than a line stays whole: RFC 5322 allows 998.
 */
static void
hdr_items(dm_buf *b, const char *name, const char *const *items,
    size_t n, char sep)
{
	size_t col, i, len, need;

	dm_buf_adds(b, name);
	dm_buf_adds(b, ":");
	col = strlen(name) + 1;
	for (i = 0; i < n; i++) {
		len = strlen(items[i]);
		need = 1 + len + (sep != '\0' && i + 1 < n ? 1 : 0);
		if (i > 0 && col + need > LINE_MAX_SOFT) {
			dm_buf_adds(b, "\r\n");
			col = 0;
		}
		dm_buf_adds(b, " ");
		dm_buf_adds(b, items[i]);
		col += 1 + len;
		if (sep != '\0' && i + 1 < n) {
			dm_buf_add(b, &sep, 1);
			col++;
		}
	}
	dm_buf_adds(b, "\r\n");
}

static void
hdr(dm_buf *b, const char *name, const char *value)
{
	hdr_items(b, name, &value, 1, '\0');
}

/* Subject: Report Domain: D Submitter: S Report-ID: <ID> (folded). */
static void
hdr_subject(dm_buf *b, const rpt_mail *m)
{
	char dom[300], sub[300], rid[ID_MAX + 16];
	const char *items[3] = { dom, sub, rid };

	snprintf(dom, sizeof(dom), "Report Domain: %s", m->domain);
	snprintf(sub, sizeof(sub), "Submitter: %s", m->submitter);
	snprintf(rid, sizeof(rid), "Report-ID: <%s>", m->report_id);
	hdr_items(b, "Subject", items, 3, '\0');
}

/* Words (no word contains a space) wrapped at TEXT_WIDTH, CRLF ends. */
static void
text_wrap(dm_buf *b, const char *s)
{
	size_t col = 0, len;

	while (*s != '\0') {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		len = strcspn(s, " ");
		if (col > 0 && col + 1 + len > TEXT_WIDTH) {
			dm_buf_adds(b, "\r\n");
			col = 0;
		}
		if (col > 0) {
			dm_buf_adds(b, " ");
			col++;
		}
		dm_buf_add(b, s, len);
		col += len;
		s += len;
	}
	dm_buf_adds(b, "\r\n");
}

/* Base64 by libcrypto, cut into lines of RPT_MAIL_B64_LINE and CRLF. */
static void
b64(dm_buf *b, const unsigned char *p, size_t n)
{
	unsigned char line[RPT_MAIL_B64_LINE + 3];
	size_t i, k, in = RPT_MAIL_B64_LINE / 4 * 3;
	int len;

	for (i = 0; i < n; i += k) {
		k = n - i < in ? n - i : in;
		len = EVP_EncodeBlock(line, p + i, (int)k);
		line[len++] = '\r';
		line[len++] = '\n';
		dm_buf_add(b, (const char *)line, (size_t)len);
	}
}

size_t
rpt_mail_b64_size(size_t n)
{
	size_t chars = (n + 2) / 3 * 4;

	return chars + (chars + RPT_MAIL_B64_LINE - 1) / RPT_MAIL_B64_LINE * 2;
}

/*
 * A boundary that none of the parts contains. The parts are base64 and
 * text built from checked names, neither can hold "=_", so the first
 * candidate always fits; the search is a second line of defence.
 */
static void
pick_boundary(char out[64], const rpt_mail *m, const dm_buf *parts,
    size_t nparts)
{
	uint32_t h = dm_hash_str(DM_HASH_INIT, m->report_id);
	unsigned k;
	size_t i;
	bool clash;

	for (k = 0;; k++) {
		snprintf(out, 64, "=_dmarc-report_%08" PRIx32 "_%u", h, k);
		clash = false;
		for (i = 0; i < nparts && !clash; i++)
			clash = parts[i].p != NULL &&
			    memmem(parts[i].p, parts[i].len, out,
			    strlen(out)) != NULL;
		if (!clash)
			return;
	}
}

static void
hdr_common(dm_buf *b, const rpt_mail *m, const char *msgid_extra)
{
	char date[80], mid[ID_MAX + 300];

	hdr(b, "From", m->from);
	hdr_items(b, "To", m->to, m->nto, ',');
	hdr_subject(b, m);
	fmt_date(m->date, date);
	hdr(b, "Date", date);
	snprintf(mid, sizeof(mid), "<%s.%" PRId64 "%s@%s>", m->report_id,
	    m->begin, msgid_extra, m->message_id_domain);
	hdr(b, "Message-ID", mid);
	hdr(b, "Auto-Submitted", "auto-generated");
	hdr(b, "MIME-Version", "1.0");
}

static void
part_text_headers(dm_buf *b)
{
	hdr(b, "Content-Type", "text/plain; charset=us-ascii");
	hdr(b, "Content-Transfer-Encoding", "7bit");
	dm_buf_adds(b, "\r\n");
}

/* Headers, the parts joined by the boundary; hands the result over. */
static dm_status
assemble(dm_buf *b, const rpt_mail *m, const char *extra_id,
    dm_buf *parts, size_t nparts, char **eml, size_t *len)
{
	char boundary[64], ctype[96];
	size_t i;

	pick_boundary(boundary, m, parts, nparts);
	hdr_common(b, m, extra_id);
	snprintf(ctype, sizeof(ctype), "boundary=\"%s\"", boundary);
	{
		const char *items[2] = { "multipart/mixed", ctype };

		hdr_items(b, "Content-Type", items, 2, ';');
	}
	dm_buf_adds(b, "\r\nThis is a multi-part message in MIME format.\r\n");
	for (i = 0; i < nparts; i++) {
		dm_buf_printf(b, "\r\n--%s\r\n", boundary);
		dm_buf_add(b, parts[i].p, parts[i].len);
	}
	dm_buf_printf(b, "\r\n--%s--\r\n", boundary);
	for (i = 0; i < nparts; i++)
		dm_buf_free(&parts[i]);
	*eml = dm_buf_take(b, len);
	return DM_OK;
}

/* --- the public part ----------------------------------------------------- */

/* Room for deflate's output: *p grows by doubling. */
static void
gz_room(unsigned char **p, size_t *cap, size_t used)
{
	unsigned char *np;

	if (*p != NULL && used < *cap)
		return;
	if (*p != NULL)
		*cap *= 2;
	if ((np = realloc(*p, *cap)) == NULL)
		dm_log_oom();
	*p = np;
}

/*
 * Deflate what z holds as input (the last chunk finishes the stream).
 * 0, or -1 when zlib failed.
 */
static int
gz_chunk(z_stream *z, unsigned char **p, size_t *cap, size_t *used,
    bool last)
{
	int rc;

	do {
		gz_room(p, cap, *used);
		z->next_out = *p + *used;
		z->avail_out = (uInt)(*cap - *used > (1u << 30) ? (1u << 30) :
		    *cap - *used);
		if ((rc = deflate(z, last ? Z_FINISH : Z_NO_FLUSH)) ==
		    Z_STREAM_ERROR)
			return -1;
		*used = (size_t)(z->next_out - *p);
	} while (z->avail_in > 0 || (last && rc != Z_STREAM_END));
	return 0;
}

dm_status
rpt_gzip(const char *xml, size_t len, const char *name_in_gzip,
    unsigned char **out, size_t *outlen)
{
	z_stream z;
	gz_header gh;
	unsigned char *p = NULL;
	size_t cap, done = 0, chunk;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	memset(&z, 0, sizeof(z));
	memset(&gh, 0, sizeof(gh));
	/* 15 + 16: a gzip wrapper instead of zlib's. */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		dm_log_oom();	/* zlib's only failure with valid arguments */
	gh.os = 255;		/* mtime 0, OS unknown: equal input, equal bytes */
	gh.name = (Bytef *)(uintptr_t)name_in_gzip;
	cap = len / 4 + 1024 + (name_in_gzip ? strlen(name_in_gzip) : 0);
	if (deflateSetHeader(&z, &gh) == Z_OK)
		do {	/* avail_in is 32 bits: at most 1 GB at a time */
			chunk = len - done > (1u << 30) ? 1u << 30 : len - done;
			z.next_in = (Bytef *)(uintptr_t)(xml + done);
			z.avail_in = (uInt)chunk;
			done += chunk;
			rc = gz_chunk(&z, &p, &cap, outlen, done == len);
		} while (rc == 0 && done < len);
	deflateEnd(&z);
	if (rc != 0) {
		free(p);
		*outlen = 0;
		errno = EIO;
		return DM_PERMFAIL;
	}
	*out = p;
	return DM_OK;
}

dm_status
rpt_mail_filename(const rpt_mail *m, char *buf, size_t size)
{
	char uid[ID_MAX + 1];
	const char *s;
	size_t n = 0;
	int w;

	if (m == NULL || !valid_domain(m->submitter) ||
	    !valid_domain(m->domain) || !valid_id(m->report_id) ||
	    m->begin < 0 || m->end <= m->begin) {
		errno = EINVAL;
		return DM_PERMFAIL;
	}
	for (s = m->report_id; *s != '\0'; s++)
		if (is_alnum((unsigned char)*s))
			uid[n++] = *s;
	uid[n] = '\0';
	if (n == 0) {
		errno = EINVAL;
		return DM_PERMFAIL;
	}
	w = snprintf(buf, size, "%s!%s!%" PRId64 "!%" PRId64 "!%s.xml.gz",
	    m->submitter, m->domain, m->begin, m->end - 1, uid);
	if (w < 0 || (size_t)w >= size) {
		errno = ERANGE;
		return DM_PERMFAIL;
	}
	return DM_OK;
}

dm_status
rpt_mail_build(const rpt_mail *m, char **eml, size_t *len)
{
	dm_buf b = DM_BUF_INIT, parts[2] = { DM_BUF_INIT, DM_BUF_INIT };
	char fname[700], from[80], to[80], para[1400], q[720];
	const char *items[2];

	*eml = NULL;
	*len = 0;
	if (!valid_common(m) || m->gz == NULL || m->gzlen == 0 ||
	    rpt_mail_filename(m, fname, sizeof(fname)) != DM_OK) {
		errno = EINVAL;
		return DM_PERMFAIL;
	}
	fmt_utc(m->begin, from);
	fmt_utc(m->end - 1, to);

	part_text_headers(&parts[0]);
	snprintf(para, sizeof(para), "This is an aggregate DMARC report for "
	    "%s from %s, covering %s to %s UTC.", m->domain, m->submitter,
	    from, to);
	text_wrap(&parts[0], para);
	dm_buf_adds(&parts[0], "\r\n");
	snprintf(para, sizeof(para), "Report-ID: <%s>", m->report_id);
	text_wrap(&parts[0], para);
	snprintf(para, sizeof(para), "The report is attached as XML "
	    "compressed with gzip.");
	text_wrap(&parts[0], para);

	snprintf(q, sizeof(q), "name=\"%s\"", fname);
	items[0] = "application/gzip";
	items[1] = q;
	hdr_items(&parts[1], "Content-Type", items, 2, ';');
	snprintf(q, sizeof(q), "filename=\"%s\"", fname);
	items[0] = "attachment";
	hdr_items(&parts[1], "Content-Disposition", items, 2, ';');
	hdr(&parts[1], "Content-Transfer-Encoding", "base64");
	dm_buf_adds(&parts[1], "\r\n");
	b64(&parts[1], m->gz, m->gzlen);
	return assemble(&b, m, "", parts, 2, eml, len);
}

dm_status
rpt_mail_error_build(const rpt_mail *m, uint64_t report_size,
    const char *const *uris, size_t nuris, char **eml, size_t *len)
{
	dm_buf b = DM_BUF_INIT, parts[2] = { DM_BUF_INIT, DM_BUF_INIT };
	char date[80], from[80], to[80], para[1400], rid[ID_MAX + 3];
	size_t i;

	*eml = NULL;
	*len = 0;
	if (!valid_common(m) || uris == NULL || nuris == 0) {
		errno = EINVAL;
		return DM_PERMFAIL;
	}
	for (i = 0; i < nuris; i++)
		if (!valid_uri(uris[i])) {
			errno = EINVAL;
			return DM_PERMFAIL;
		}
	fmt_date(m->date, date);
	fmt_utc(m->begin, from);
	fmt_utc(m->end - 1, to);
	snprintf(rid, sizeof(rid), "<%s>", m->report_id);

	/* RFC 7489 7.2.2: field-value pairs as in RFC 3464 section 2 */
	part_text_headers(&parts[0]);
	hdr(&parts[0], "Report-Date", date);
	hdr(&parts[0], "Report-Domain", m->domain);
	hdr(&parts[0], "Report-ID", rid);
	dm_buf_printf(&parts[0], "Report-Size: %" PRIu64 "\r\n", report_size);
	hdr(&parts[0], "Submitter", m->submitter);
	hdr_items(&parts[0], "Submitting-URI", uris, nuris, ',');

	part_text_headers(&parts[1]);
	snprintf(para, sizeof(para), "The aggregate DMARC report for %s from "
	    "%s, covering %s to %s UTC, was not sent: at %" PRIu64 " bytes "
	    "it exceeds the size limit of every reporting URI that the DMARC "
	    "record of %s lists (the Submitting-URI field above).",
	    m->domain, m->submitter, from, to, report_size, m->domain);
	text_wrap(&parts[1], para);
	return assemble(&b, m, ".error", parts, 2, eml, len);
}
