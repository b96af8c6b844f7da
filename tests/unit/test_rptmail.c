/*
 * tests/unit/test_rptmail.c - the report mail: gzip round trips and
 * reproducible bytes, the message taken apart again (CRLF, folding under
 * 78 columns, headers, boundary, base64 back to the gzip bytes), Subject
 * and filename as RFC 7489 7.2.1.1 and RFC 9990 write them, Date, the
 * Message-ID that a resent report keeps, header injection refused, the
 * RFC 7489 7.2.2 error report, and Python's email parser as a second
 * reader (skipped without python3).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>

#include "rptmail.h"
#include "tap.h"

/* --- readers the test brings itself ------------------------------------ */

static int
gunzip(const unsigned char *gz, size_t n, char **out, size_t *outlen)
{
	z_stream z;
	size_t cap = 4096;
	char *p = malloc(cap), *np;
	int rc;

	memset(&z, 0, sizeof(z));
	*out = NULL;
	*outlen = 0;
	if (p == NULL || inflateInit2(&z, 15 + 16) != Z_OK) {
		free(p);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)gz;
	z.avail_in = (uInt)n;
	do {
		if (*outlen == cap) {
			if ((np = realloc(p, cap * 2)) == NULL)
				break;
			p = np;
			cap *= 2;
		}
		z.next_out = (Bytef *)p + *outlen;
		z.avail_out = (uInt)(cap - *outlen);
		rc = inflate(&z, Z_NO_FLUSH);
		*outlen = (size_t)((char *)z.next_out - p);
	} while (rc == Z_OK);
	inflateEnd(&z);
	if (rc != Z_STREAM_END || z.avail_in != 0) {
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

/* Strict base64 of CRLF-separated lines; -1 for any other byte. */
static int
unbase64(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
	static const char al[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char *p = malloc(n / 4 * 3 + 3);
	uint32_t v = 0;
	size_t i, k = 0, o = 0, pad = 0;
	const char *c;

	if (p == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			i++;
			continue;
		}
		if (s[i] == '=') {
			pad++;
			v <<= 6;
		} else if (pad > 0 || s[i] == '\0' ||
		    (c = strchr(al, s[i])) == NULL) {
			free(p);
			return -1;
		} else
			v = (v << 6) | (uint32_t)(c - al);
		if (++k == 4) {
			p[o++] = (unsigned char)(v >> 16);
			if (pad < 2)
				p[o++] = (unsigned char)(v >> 8);
			if (pad < 1)
				p[o++] = (unsigned char)v;
			k = 0;
			v = 0;
		}
	}
	if (k != 0) {
		free(p);
		return -1;
	}
	*out = p;
	*outlen = o;
	return 0;
}

/*
 * A header block: check every line ends in CRLF and is at most maxcol
 * long, then the unfolded value of a field (first occurrence) into
 * out. Returns false when absent.
 */
static bool
header(const char *block, size_t n, const char *name, char *out,
    size_t size)
{
	size_t nl = strlen(name), i = 0, o = 0;

	while (i < n) {
		const char *line = block + i;
		size_t len = (size_t)((const char *)memchr(line, '\r',
		    n - i) - line);

		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			size_t j = i + nl + 1;

			while (block[j] == ' ')
				j++;
			for (;;) {
				while (block[j] != '\r' && o + 1 < size)
					out[o++] = block[j++];
				if (block[j + 2] != ' ' && block[j + 2] != '\t')
					break;
				j += 2;		/* unfold: drop only the CRLF */
			}
			out[o] = '\0';
			return true;
		}
		i += len + 2;
	}
	return false;
}

/* Every line CRLF, no bare CR or LF; the longest line. */
static bool
crlf_only(const char *s, size_t n, size_t *longest)
{
	size_t i, col = 0;

	*longest = 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (i + 1 >= n || s[i + 1] != '\n')
				return false;
			i++;
			col = 0;
			continue;
		}
		if (s[i] == '\n' || s[i] == '\0')
			return false;
		if (++col > *longest)
			*longest = col;
	}
	return n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n';
}

/*
 * Lines over 78 columns that folding cannot shorten: the Message-ID
 * (one msg-id) and the attachment's filename parameter (one quoted
 * string). Any other line over 78, or any over 998, is reported.
 */
static bool
long_lines_ok(const char *s, size_t n, const char *fname, size_t *bad)
{
	const char *p = s, *e = s + n, *nl;
	size_t ll;

	*bad = 0;
	while (p < e && (nl = memmem(p, (size_t)(e - p), "\r\n", 2)) !=
	    NULL) {
		ll = (size_t)(nl - p);
		if (ll > 998 || (ll > 78 && strncmp(p, "Message-ID: ", 12) != 0
		    && (fname == NULL || memmem(p, ll, fname,
		    strlen(fname)) == NULL))) {
			*bad = (size_t)(p - s);
			return false;
		}
		p = nl + 2;
	}
	return true;
}

static size_t
longest_header_line(const char *s, size_t n)
{
	const char *end = memmem(s, n, "\r\n\r\n", 4), *p, *nl;
	size_t longest = 0;

	if (end == NULL)
		end = s + n;
	for (p = s; p < end; p = nl + 2) {
		if ((nl = memmem(p, (size_t)(end + 2 - p), "\r\n", 2)) == NULL)
			break;
		if ((size_t)(nl - p) > longest &&
		    strncmp(p, "Message-ID: ", 12) != 0)
			longest = (size_t)(nl - p);
	}
	return longest;
}

/* The parts of a multipart body; count them and hand out part k. */
struct parts {
	const char *p[8];
	size_t len[8];
	size_t n;
	bool closed;		/* the close delimiter came last */
	size_t boundary_hits;	/* "--B" anywhere */
};

static void
split_parts(const char *body, size_t n, const char *boundary,
    struct parts *ps)
{
	char delim[128], close_[128];
	const char *p = body, *end = body + n, *hit;
	size_t dl;

	memset(ps, 0, sizeof(*ps));
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", boundary);
	snprintf(close_, sizeof(close_), "\r\n--%s--\r\n", boundary);
	dl = strlen(delim);
	for (hit = body; (hit = memmem(hit, (size_t)(end - hit), boundary,
	    strlen(boundary))) != NULL; hit++)
		ps->boundary_hits++;
	/* the first delimiter may follow the preamble's last CRLF */
	if ((hit = memmem(p, n, delim, dl)) == NULL)
		return;
	p = hit + dl;
	while (ps->n < 8) {
		const char *next = memmem(p, (size_t)(end - p), delim, dl);
		const char *cl = memmem(p, (size_t)(end - p), close_,
		    strlen(close_));

		if (next != NULL && (cl == NULL || next < cl)) {
			ps->p[ps->n] = p;
			ps->len[ps->n++] = (size_t)(next - p);
			p = next + dl;
			continue;
		}
		if (cl != NULL) {
			ps->p[ps->n] = p;
			ps->len[ps->n++] = (size_t)(cl - p);
			ps->closed = cl + strlen(close_) == end;
		}
		return;
	}
}

/* --- fixtures ----------------------------------------------------------- */

static const char *const rua2[] = { "dmarc-rua@example.com",
	"reports@thirdparty.example" };

static const char xml_small[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n"
    "  <report_metadata><org_name>receiver</org_name></report_metadata>\n"
    "</feedback>\n";

static void
base_mail(rpt_mail *m, const unsigned char *gz, size_t gzlen)
{
	memset(m, 0, sizeof(*m));
	m->from = "DMARC Reports <dmarc-noreply@mail.receiver.example>";
	m->to = rua2;
	m->nto = 2;
	m->submitter = "mail.receiver.example";
	m->domain = "example.com";
	m->report_id = "1709251200.0123456789abcdef.1709337660";
	m->begin = 1709251200;		/* 2024-03-01 00:00:00 UTC */
	m->end = 1709337600;
	m->date = 1709337660;		/* 2024-03-02 00:01:00 */
	m->message_id_domain = "mail.receiver.example";
	m->gz = gz;
	m->gzlen = gzlen;
}

/* Rows as a report has them: compressible, not trivially. */
static char *
big_xml(size_t n)
{
	char *x = malloc(n + 256);
	uint32_t s = 12345;
	size_t o = 0;

	if (x == NULL)
		tap_bail("malloc");
	while (o < n) {
		s = s * 1103515245u + 12345u;
		o += (size_t)snprintf(x + o, 256, "<record><row><source_ip>"
		    "192.0.%u.%u</source_ip><count>%u</count></row>"
		    "<identifiers><header_from>d%u.example</header_from>"
		    "</identifiers></record>\n", (s >> 8) % 256, (s >> 16) %
		    256, (s >> 4) % 1000, (s >> 20) % 50);
	}
	x[n] = '\0';
	return x;
}

/* --- gzip ---------------------------------------------------------------- */

static void
test_gzip(void)
{
	char *big = big_xml(3 * 1024 * 1024 + 17);
	const struct {
		const char *what;
		const char *xml;
		size_t len;
		const char *name;
	} rows[] = {
		{ "empty input", "", 0, NULL },
		{ "small report with a name", xml_small, sizeof(xml_small) - 1,
		    "s!d!1!2!id.xml" },
		{ "small report without a name", xml_small,
		    sizeof(xml_small) - 1, NULL },
		{ "3 MB report", big, strlen(big), "big.xml" },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unsigned char *gz = NULL, *gz2 = NULL;
		size_t gzlen = 0, gzlen2 = 0, back_len = 0;
		char *back = NULL;

		if (!tap_ok(rpt_gzip(rows[i].xml, rows[i].len, rows[i].name,
		    &gz, &gzlen) == 0, "gzip %s", rows[i].what)) {
			tap_skip(6, "no gzip output");
			continue;
		}
		tap_ok(gzlen >= 18 && gz[0] == 0x1f && gz[1] == 0x8b &&
		    gz[2] == 8, "%s: gzip magic and deflate", rows[i].what);
		tap_ok(gzlen >= 18 && gz[4] == 0 && gz[5] == 0 && gz[6] == 0 &&
		    gz[7] == 0 && gz[9] == 255,
		    "%s: mtime 0, OS unknown", rows[i].what);
		if (rows[i].name != NULL)
			tap_ok((gz[3] & 0x08) != 0 && strcmp((char *)gz + 10,
			    rows[i].name) == 0, "%s: FNAME is %s", rows[i].what,
			    rows[i].name);
		else
			tap_ok((gz[3] & 0x08) == 0, "%s: no FNAME",
			    rows[i].what);
		tap_ok(gunzip(gz, gzlen, &back, &back_len) == 0 &&
		    back_len == rows[i].len && memcmp(back, rows[i].xml,
		    back_len) == 0, "%s: inflates back to the same %zu bytes",
		    rows[i].what, rows[i].len);
		tap_ok(rpt_gzip(rows[i].xml, rows[i].len, rows[i].name, &gz2,
		    &gzlen2) == 0 && gzlen2 == gzlen && memcmp(gz, gz2,
		    gzlen) == 0, "%s: the same bytes a second time",
		    rows[i].what);
		if (rows[i].len > 1000)
			tap_ok(gzlen < rows[i].len / 2,
			    "%s: compressed (%zu -> %zu)", rows[i].what,
			    rows[i].len, gzlen);
		else
			tap_skip(1, "too small to compare sizes");
		free(gz);
		free(gz2);
		free(back);
	}
	free(big);
}

/* --- the report mail ------------------------------------------------------ */

static const struct mailrow {
	const char *what;
	const char *submitter, *domain, *report_id;
	int64_t begin, end, date;
	const char *subject, *filename, *date_hdr, *msgid, *text;
} mailrows[] = {
	{ "a day, rptsrc-style id", "mail.receiver.example", "example.com",
	    "1709251200.0123456789abcdef.1709337660", 1709251200, 1709337600,
	    1709337660,
	    "Report Domain: example.com Submitter: mail.receiver.example "
	    "Report-ID: <1709251200.0123456789abcdef.1709337660>",
	    "mail.receiver.example!example.com!1709251200!1709337599!"
	    "17092512000123456789abcdef1709337660.xml.gz",
	    "Sat, 02 Mar 2024 00:01:00 +0000",
	    "<1709251200.0123456789abcdef.1709337660.1709251200@"
	    "mail.receiver.example>",
	    "covering 2024-03-01 00:00:00 to 2024-03-01 23:59:59 UTC." },
	{ "an id of letters and digits goes into the filename whole",
	    "rcv.example", "sub.example.org", "A1b2C3", 0, 3600, 951782400,
	    "Report Domain: sub.example.org Submitter: rcv.example "
	    "Report-ID: <A1b2C3>",
	    "rcv.example!sub.example.org!0!3599!A1b2C3.xml.gz",
	    "Tue, 29 Feb 2000 00:00:00 +0000",
	    "<A1b2C3.0@rcv.example>", "covering 1970-01-01 00:00:00 to "
	    "1970-01-01 00:59:59 UTC." },
	{ "id with '-' and '_', domain with '_'", "r.example",
	    "_dmarc-test.example", "2024-03-01_x", 1709251200, 1709254800,
	    1709254800,
	    "Report Domain: _dmarc-test.example Submitter: r.example "
	    "Report-ID: <2024-03-01_x>",
	    "r.example!_dmarc-test.example!1709251200!1709254799!20240301x"
	    ".xml.gz", "Fri, 01 Mar 2024 01:00:00 +0000",
	    "<2024-03-01_x.1709251200@r.example>", "2024-03-01 00:59:59" },
};

static void
check_mail(const struct mailrow *r, const char *eml, size_t len,
    const unsigned char *gz, size_t gzlen)
{
	const char *sep = memmem(eml, len, "\r\n\r\n", 4), *body;
	char v[2048], want[1024], boundary[128];
	size_t longest, hlen, blen, declen = 0, i;
	unsigned char *dec = NULL;
	struct parts ps;

	if (!tap_ok(sep != NULL, "%s: a header block and a body", r->what)) {
		tap_skip(19, "no header block");
		return;
	}
	hlen = (size_t)(sep - eml) + 2;
	body = sep + 4;
	blen = len - (size_t)(body - eml);
	tap_ok(crlf_only(eml, len, &longest),
	    "%s: every line ends in CRLF, none bare", r->what);
	tap_ok(longest_header_line(eml, len) <= 78,
	    "%s: header lines but Message-ID within 78 columns (%zu)",
	    r->what, longest_header_line(eml, len));
	tap_ok(long_lines_ok(eml, len, r->filename, &i),
	    "%s: lines over 78 only where folding cannot help", r->what);
	if (i != 0)
		tap_diag("at: %.100s", eml + i);
	tap_ok(header(eml, hlen, "From", v, sizeof(v)) && strcmp(v,
	    "DMARC Reports <dmarc-noreply@mail.receiver.example>") == 0,
	    "%s: From", r->what);
	tap_ok(header(eml, hlen, "To", v, sizeof(v)) && strcmp(v,
	    "dmarc-rua@example.com, reports@thirdparty.example") == 0,
	    "%s: To lists the addresses in order: %s", r->what, v);
	header(eml, hlen, "Subject", v, sizeof(v));
	tap_is_str(v, r->subject, "%s: Subject as RFC 7489 7.2.1.1", r->what);
	header(eml, hlen, "Date", v, sizeof(v));
	tap_is_str(v, r->date_hdr, "%s: Date", r->what);
	header(eml, hlen, "Message-ID", v, sizeof(v));
	tap_is_str(v, r->msgid, "%s: Message-ID", r->what);
	header(eml, hlen, "MIME-Version", v, sizeof(v));
	tap_is_str(v, "1.0", "%s: MIME-Version", r->what);
	boundary[0] = '\0';
	if (header(eml, hlen, "Content-Type", v, sizeof(v)) &&
	    strncmp(v, "multipart/mixed; boundary=\"", 27) == 0 &&
	    strlen(v) < sizeof(boundary) + 28 && v[strlen(v) - 1] == '"') {
		memcpy(boundary, v + 27, strlen(v) - 28);
		boundary[strlen(v) - 28] = '\0';
	}
	tap_ok(boundary[0] != '\0', "%s: multipart/mixed with a boundary %s",
	    r->what, boundary);
	split_parts(body, blen, boundary, &ps);
	tap_ok(ps.n == 2 && ps.closed && ps.boundary_hits == 3,
	    "%s: two parts, closed, the boundary only as delimiter (%zu "
	    "parts, %zu hits)", r->what, ps.n, ps.boundary_hits);
	if (ps.n != 2) {
		tap_skip(8, "parts");
		return;
	}
	/* the text part */
	sep = memmem(ps.p[0], ps.len[0], "\r\n\r\n", 4);
	tap_ok(sep != NULL && header(ps.p[0], (size_t)(sep - ps.p[0]) + 2,
	    "Content-Type", v, sizeof(v)) && strcmp(v,
	    "text/plain; charset=us-ascii") == 0,
	    "%s: first part text/plain", r->what);
	snprintf(want, sizeof(want), "%.*s", (int)ps.len[0], ps.p[0]);
	for (i = 0; want[i] != '\0'; i++)	/* unwrap the text */
		if (want[i] == '\r')
			memmove(want + i, want + i + 1, strlen(want + i));
	for (i = 0; want[i] != '\0'; i++)
		if (want[i] == '\n')
			want[i] = ' ';
	tap_ok(strstr(want, "This is an aggregate DMARC report for") != NULL
	    && strstr(want, r->domain) != NULL && strstr(want,
	    r->submitter) != NULL && strstr(want, r->text) != NULL,
	    "%s: the text names domain, submitter and period", r->what);
	/* the attachment */
	sep = memmem(ps.p[1], ps.len[1], "\r\n\r\n", 4);
	if (!tap_ok(sep != NULL, "%s: attachment has headers", r->what)) {
		tap_skip(5, "attachment");
		return;
	}
	hlen = (size_t)(sep - ps.p[1]) + 2;
	header(ps.p[1], hlen, "Content-Type", v, sizeof(v));
	snprintf(want, sizeof(want), "application/gzip; name=\"%s\"",
	    r->filename);
	tap_is_str(v, want, "%s: Content-Type of the attachment", r->what);
	header(ps.p[1], hlen, "Content-Disposition", v, sizeof(v));
	snprintf(want, sizeof(want), "attachment; filename=\"%s\"",
	    r->filename);
	tap_is_str(v, want, "%s: filename as RFC 7489 7.2.1.1", r->what);
	header(ps.p[1], hlen, "Content-Transfer-Encoding", v, sizeof(v));
	tap_is_str(v, "base64", "%s: base64", r->what);
	{
		/* 76 characters a line but the last */
		const char *p = sep + 4, *e = ps.p[1] + ps.len[1];
		bool ok = true;

		while (p < e) {
			const char *nl = memmem(p, (size_t)(e - p), "\r\n", 2);
			size_t ll = nl ? (size_t)(nl - p) : (size_t)(e - p);

			if (ll != 76 && nl != NULL && nl + 2 < e)
				ok = false;
			p += ll + 2;
		}
		tap_ok(ok, "%s: base64 lines of 76", r->what);
	}
	i = (size_t)unbase64(sep + 4, (size_t)(ps.p[1] + ps.len[1] - sep -
	    4), &dec, &declen);
	tap_ok(i == 0 && declen == gzlen && memcmp(dec, gz, gzlen) == 0,
	    "%s: base64 decodes to the gzip bytes (%zu)", r->what, declen);
	free(dec);
}

static const char py_check[] =
"import sys, email, email.policy, gzip\n"
"eml, xml, fname, subj, kind = sys.argv[1:6]\n"
"raw = open(eml, 'rb').read()\n"
"m = email.message_from_bytes(raw, policy=email.policy.default)\n"
"def fail(s):\n"
"    print('# python: ' + s); sys.exit(1)\n"
"if m.defects: fail('defects %r' % m.defects)\n"
"if str(m['Subject']) != subj: fail('Subject %r' % str(m['Subject']))\n"
"if not m.is_multipart(): fail('not multipart')\n"
"if m['Date'].datetime is None: fail('Date')\n"
"if len(m['To'].addresses) < 1: fail('To')\n"
"for p in m.walk():\n"
"    if p.defects: fail('part defects %r' % p.defects)\n"
"parts = [p for p in m.walk() if not p.is_multipart()]\n"
"if kind == 'report':\n"
"    gz = [p for p in parts if p.get_content_type() == 'application/gzip']\n"
"    if len(gz) != 1: fail('%d gzip parts' % len(gz))\n"
"    if gz[0].get_filename() != fname: fail('filename %r' % gz[0].get_filename())\n"
"    if gz[0].get_content_disposition() != 'attachment': fail('disposition')\n"
"    data = gzip.decompress(gz[0].get_payload(decode=True))\n"
"    if data != open(xml, 'rb').read(): fail('xml differs')\n"
"    if parts[0].get_content_type() != 'text/plain': fail('text part')\n"
"elif kind == 'error':\n"
"    if len(parts) != 2: fail('%d parts' % len(parts))\n"
"    f = email.message_from_string(parts[0].get_content())\n"
"    for k in ('Report-Date', 'Report-Domain', 'Report-ID', 'Report-Size',\n"
"              'Submitter', 'Submitting-URI'):\n"
"        if f[k] is None: fail('no ' + k)\n"
"    if f['Report-Size'] != xml: fail('Report-Size %r' % f['Report-Size'])\n"
"print('# python: %d recipients, %d parts' % (len(m['To'].addresses), len(parts)))\n";

static int have_python = -1;

/* Python's email package reads what we wrote. -1: no python3. */
static int
python_reads(const char *eml, size_t len, const char *xml_or_size,
    size_t xlen, const char *fname, const char *subject, const char *kind)
{
	char epath[] = "/tmp/test_rptmail_eml.XXXXXX";
	char xpath[] = "/tmp/test_rptmail_xml.XXXXXX";
	int efd, xfd, status;
	pid_t pid;

	if (have_python < 0) {
		if ((pid = fork()) == 0) {
			int nul = open("/dev/null", O_WRONLY);

			dup2(nul, 1);
			dup2(nul, 2);
			execlp("python3", "python3", "-c",
			    "import email.policy, gzip", (char *)NULL);
			_exit(127);
		}
		have_python = pid > 0 && waitpid(pid, &status, 0) == pid &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	if (!have_python)
		return -1;
	if ((efd = mkstemp(epath)) < 0 || (xfd = mkstemp(xpath)) < 0)
		tap_bail("mkstemp");
	if (write(efd, eml, len) != (ssize_t)len ||
	    write(xfd, xml_or_size, xlen) != (ssize_t)xlen)
		tap_bail("write");
	close(efd);
	close(xfd);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		execlp("python3", "python3", "-c", py_check, epath,
		    strcmp(kind, "report") == 0 ? xpath : xml_or_size, fname,
		    subject, kind, (char *)NULL);
		_exit(127);
	}
	status = -1;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		status = -1;
	unlink(epath);
	unlink(xpath);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static void
python_check(const char *what, const char *eml, size_t len,
    const char *xml, size_t xlen, const char *fname, const char *subject,
    const char *kind)
{
	int rc = python_reads(eml, len, xml, xlen, fname, subject, kind);

	if (rc < 0)
		tap_skip(1, "no python3");
	else
		tap_ok(rc == 0, "%s: Python's email parser reads it", what);
}

static void
test_mail(void)
{
	unsigned char *gz;
	size_t gzlen, i;

	if (rpt_gzip(xml_small, sizeof(xml_small) - 1, "x.xml", &gz,
	    &gzlen) != 0)
		tap_bail("rpt_gzip");
	for (i = 0; i < sizeof(mailrows) / sizeof(mailrows[0]); i++) {
		const struct mailrow *r = &mailrows[i];
		char *eml = NULL, *eml2 = NULL, fname[700], v1[256], v2[256];
		size_t len = 0, len2 = 0;
		rpt_mail m;

		base_mail(&m, gz, gzlen);
		m.submitter = r->submitter;
		m.domain = r->domain;
		m.report_id = r->report_id;
		m.message_id_domain = r->submitter;
		m.begin = r->begin;
		m.end = r->end;
		m.date = r->date;
		tap_ok(rpt_mail_filename(&m, fname, sizeof(fname)) == 0 &&
		    strcmp(fname, r->filename) == 0, "%s: rpt_mail_filename %s",
		    r->what, fname);
		if (!tap_ok(rpt_mail_build(&m, &eml, &len) == 0 &&
		    strlen(eml) == len, "%s: built", r->what)) {
			tap_skip(23, "not built");
			continue;
		}
		check_mail(r, eml, len, gz, gzlen);
		tap_ok(rpt_mail_build(&m, &eml2, &len2) == 0 && len2 == len &&
		    memcmp(eml, eml2, len) == 0,
		    "%s: built again, the same bytes", r->what);
		free(eml2);
		m.date += 86400 * 3;	/* a retry three days later */
		rpt_mail_build(&m, &eml2, &len2);
		header(eml, len, "Message-ID", v1, sizeof(v1));
		header(eml2, len2, "Message-ID", v2, sizeof(v2));
		tap_is_str(v2, v1, "%s: a resend keeps the Message-ID",
		    r->what);
		header(eml, len, "Date", v1, sizeof(v1));
		header(eml2, len2, "Date", v2, sizeof(v2));
		tap_ok(strcmp(v1, v2) != 0, "%s: and has its own Date",
		    r->what);
		python_check(r->what, eml, len, xml_small,
		    sizeof(xml_small) - 1, r->filename, r->subject, "report");
		free(eml);
		free(eml2);
	}
	free(gz);
}

/* --- folding ----------------------------------------------------------------- */

static void
test_folding(void)
{
	char addrs[40][80], joined[4096] = "", v[4096], label[64], dom[300],
	    sub[300];
	const char *to[40];
	unsigned char gz[4] = { 1, 2, 3, 4 };
	char *eml = NULL;
	size_t len = 0, i;
	rpt_mail m;

	for (i = 0; i < 40; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "%.*sreports%zu@rua%zu."
		    "example", (int)(i * 7 % 40), "abcdefghijklmnopqrstuvwxyz"
		    "0123456789abcd", i, i);
		to[i] = addrs[i];
		if (i > 0)
			strcat(joined, ", ");
		strcat(joined, addrs[i]);
	}
	base_mail(&m, gz, sizeof(gz));
	m.to = to;
	m.nto = 40;
	tap_ok(rpt_mail_build(&m, &eml, &len) == 0, "40 recipients: built");
	tap_ok(eml != NULL && longest_header_line(eml, len) <= 78,
	    "40 recipients: folded within 78 columns but Message-ID (%zu)",
	    eml ? longest_header_line(eml, len) : 0);
	tap_ok(eml != NULL && header(eml, len, "To", v, sizeof(v)) &&
	    strcmp(v, joined) == 0, "40 recipients: unfolded To lists all");
	if (eml != NULL)
		python_check("40 recipients", eml, len, "\x01\x02\x03\x04", 4,
		    "mail.receiver.example!example.com!1709251200!1709337599!"
		    "17092512000123456789abcdef1709337660.xml.gz",
		    "Report Domain: example.com Submitter: "
		    "mail.receiver.example Report-ID: "
		    "<1709251200.0123456789abcdef.1709337660>", "none");
	free(eml);

	/* the longest names: folded where it can be, under 998 always */
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(dom, sizeof(dom), "%s.%s.%s.%.61s", label, label, label,
	    label);
	snprintf(sub, sizeof(sub), "%s.%s.%s.%.61s", label, label, label,
	    label);
	sub[0] = 'b';
	base_mail(&m, gz, sizeof(gz));
	m.domain = dom;
	m.submitter = sub;
	m.message_id_domain = sub;
	tap_is_int((long)strlen(dom), 253, "a domain of 253 characters");
	tap_ok(rpt_mail_build(&m, &eml, &len) == 0, "253-character names: "
	    "built");
	{
		size_t longest = 0;
		char want[1024];
		bool crlf = eml != NULL && crlf_only(eml, len, &longest);

		tap_ok(crlf && longest < 998, "253-character names: lines "
		    "under 998 (%zu)", longest);
		snprintf(want, sizeof(want), "Report Domain: %s Submitter: %s "
		    "Report-ID: <%s>", dom, sub, m.report_id);
		tap_ok(eml != NULL && header(eml, len, "Subject", v,
		    sizeof(v)) && strcmp(v, want) == 0,
		    "253-character names: the Subject unfolds right");
		tap_ok(eml != NULL && strstr(eml, "Subject: Report Domain: ")
		    != NULL && strstr(eml, "\r\n Submitter: ") != NULL &&
		    strstr(eml, "\r\n Report-ID: <") != NULL,
		    "253-character names: folded as in the RFC's example");
	}
	free(eml);
	memset(dom, 'a', 254);
	dom[63] = dom[127] = dom[191] = '.';
	dom[254] = '\0';
	m.domain = dom;
	tap_ok(rpt_mail_build(&m, &eml, &len) == DM_PERMFAIL && errno == EINVAL,
	    "a domain of 254 characters is refused");
}

/* --- what is refused ------------------------------------------------------- */

enum field { F_FROM, F_TO, F_SUB, F_DOM, F_ID, F_MID, F_PERIOD, F_NTO,
	F_GZ };

static const struct badrow {
	enum field f;
	const char *value;
	bool ok;
	const char *why;
} badrows[] = {
	{ F_DOM, "example.com\r\nBcc: victim@example.net", false,
	    "domain with CRLF and a header" },
	{ F_DOM, "example.com\nX: y", false, "domain with a bare LF" },
	{ F_DOM, "example.com\r", false, "domain with a bare CR" },
	{ F_DOM, "exa mple.com", false, "domain with a space" },
	{ F_DOM, "ex\x7f" "ample.com", false, "domain with DEL" },
	{ F_DOM, "b\xc3\xbc" "cher.example", false,
	    "domain with 8-bit bytes (U-label)" },
	{ F_DOM, "xn--bcher-kva.example", true, "A-label domain" },
	{ F_DOM, "example.com.", false, "domain with a trailing dot" },
	{ F_DOM, "a..example", false, "domain with an empty label" },
	{ F_DOM, "a!b.example", false, "domain with '!' (filename separator)" },
	{ F_DOM, "a/b.example", false, "domain with '/'" },
	{ F_DOM, "", false, "empty domain" },
	{ F_DOM, NULL, false, "no domain" },
	{ F_SUB, "mail.receiver.example\r\nSubject: x", false,
	    "submitter with CRLF" },
	{ F_SUB, "mail\treceiver", false, "submitter with a tab" },
	{ F_ID, "a b", false, "report id with a space" },
	{ F_ID, "id\r\nBcc: x@y", false, "report id with CRLF" },
	{ F_ID, "a@b", false, "report id with '@'" },
	{ F_ID, "<abc>", false, "report id in angle brackets" },
	{ F_ID, ".abc", false, "report id starting with a dot" },
	{ F_ID, "abc.", false, "report id ending with a dot" },
	{ F_ID, "a..b", false, "report id with two dots" },
	{ F_ID, "a/b", false, "report id with '/'" },
	{ F_ID, "a!b", false, "report id with '!'" },
	{ F_ID, "", false, "empty report id" },
	{ F_ID, "---", false, "report id without letters or digits" },
	{ F_ID, "x1234567890123456789012345678901234567890123456789012345678"
	    "90123456789012345678901234567890123456789012345678901234567890"
	    "12345678", false, "report id of 129" },
	{ F_ID, "1234567890123456789012345678901234567890123456789012345678"
	    "90123456789012345678901234567890123456789012345678901234567890"
	    "12345678", true, "report id of 128" },
	{ F_ID, "a.b-c_d", true, "report id with '.', '-', '_'" },
	{ F_FROM, "dmarc@r.example\r\nBcc: victim@example.net", false,
	    "From with CRLF" },
	{ F_FROM, "R\xc3\xa9ports <dmarc@r.example>", false,
	    "From with 8-bit bytes" },
	{ F_FROM, "dmarc@r.example\x01", false, "From with a control byte" },
	{ F_FROM, "", false, "empty From" },
	{ F_FROM, "dmarc@r.example", true, "From, bare address" },
	{ F_TO, "a@example.com\r\nBcc: victim@example.net", false,
	    "rua address with CRLF" },
	{ F_TO, "a@example.com, b@example.net", false,
	    "two addresses in one" },
	{ F_TO, "<a@example.com>", false, "rua address in brackets" },
	{ F_TO, "a b@example.com", false, "rua address with a space" },
	{ F_TO, "\"a b\"@example.com", false, "quoted local part" },
	{ F_TO, "example.com", false, "rua address without '@'" },
	{ F_TO, "a@", false, "rua address without a domain" },
	{ F_TO, "a..b@example.com", false, "local part with two dots" },
	{ F_TO, "dmarc+rua=x@example.com", true, "local part with '+', '='" },
	{ F_MID, "r.example>\r\nX: y", false, "Message-ID domain with CRLF" },
	{ F_MID, "r.example>", false, "Message-ID domain with '>'" },
	{ F_PERIOD, NULL, false, "begin equal to end" },
	{ F_NTO, NULL, false, "no recipients" },
	{ F_GZ, NULL, false, "no report" },
};

static void
test_refused(void)
{
	unsigned char gz[4] = { 1, 2, 3, 4 };
	const char *one[1];
	char *eml;
	size_t len, i;
	rpt_mail m;
	int rc;

	for (i = 0; i < sizeof(badrows) / sizeof(badrows[0]); i++) {
		const struct badrow *r = &badrows[i];

		base_mail(&m, gz, sizeof(gz));
		switch (r->f) {
		case F_FROM: m.from = r->value; break;
		case F_TO:
			one[0] = r->value;
			m.to = one;
			m.nto = 1;
			break;
		case F_SUB: m.submitter = r->value; break;
		case F_DOM: m.domain = r->value; break;
		case F_ID: m.report_id = r->value; break;
		case F_MID: m.message_id_domain = r->value; break;
		case F_PERIOD: m.end = m.begin; break;
		case F_NTO: m.nto = 0; break;
		case F_GZ: m.gz = NULL; break;
		}
		eml = (char *)1;
		errno = 0;
		rc = rpt_mail_build(&m, &eml, &len);
		if (r->ok) {
			tap_ok(rc == 0, "%s: accepted", r->why);
			free(eml);
		} else
			tap_ok(rc == DM_PERMFAIL && errno == EINVAL && eml == NULL,
			    "%s: refused", r->why);
	}
}

/* --- the error report ---------------------------------------------------------- */

static void
test_error_report(void)
{
	static const char *const uris[] = { "mailto:dmarc-rua@example.com!10k",
		"mailto:reports@thirdparty.example!50k" };
	static const char *const bad_uris[][1] = { { "mailto:a@b.example c" },
		{ "mailto:a@b.example\r\nBcc: x@y" },
		{ "mailto:a@b.example,mailto:c@d.example" }, { "" } };
	char *eml = NULL, v[1024], boundary[128];
	size_t len = 0, longest, i;
	struct parts ps;
	rpt_mail m;

	base_mail(&m, NULL, 0);
	tap_ok(rpt_mail_error_build(&m, 123456, uris, 2, &eml, &len) == 0,
	    "error report: built");
	if (eml == NULL) {
		tap_skip(14, "no error report");
		return;
	}
	tap_ok(crlf_only(eml, len, &longest) && long_lines_ok(eml, len, NULL,
	    &i), "error report: CRLF lines within 78 columns but Message-ID");
	header(eml, len, "Subject", v, sizeof(v));
	tap_is_str(v, "Report Domain: example.com Submitter: "
	    "mail.receiver.example Report-ID: "
	    "<1709251200.0123456789abcdef.1709337660>",
	    "error report: the report's Subject");
	header(eml, len, "Message-ID", v, sizeof(v));
	tap_is_str(v, "<1709251200.0123456789abcdef.1709337660.1709251200."
	    "error@mail.receiver.example>",
	    "error report: a Message-ID of its own, also deterministic");
	header(eml, len, "To", v, sizeof(v));
	tap_is_str(v, "dmarc-rua@example.com, reports@thirdparty.example",
	    "error report: to the mailto addresses");
	boundary[0] = '\0';
	if (header(eml, len, "Content-Type", v, sizeof(v)) &&
	    sscanf(v, "multipart/mixed; boundary=\"%100[^\"]\"", boundary) != 1)
		boundary[0] = '\0';
	split_parts(strstr(eml, "\r\n\r\n") + 4,
	    len - (size_t)(strstr(eml, "\r\n\r\n") + 4 - eml), boundary, &ps);
	tap_ok(ps.n == 2 && ps.closed, "error report: two parts (%zu)", ps.n);
	if (ps.n == 2) {
		const char *f = memmem(ps.p[0], ps.len[0], "\r\n\r\n", 4);
		size_t flen = f ? ps.len[0] - (size_t)(f + 4 - ps.p[0]) : 0;
		static const struct { const char *k, *v; } fields[] = {
			{ "Report-Date", "Sat, 02 Mar 2024 00:01:00 +0000" },
			{ "Report-Domain", "example.com" },
			{ "Report-ID",
			    "<1709251200.0123456789abcdef.1709337660>" },
			{ "Report-Size", "123456" },
			{ "Submitter", "mail.receiver.example" },
			{ "Submitting-URI", "mailto:dmarc-rua@example.com!10k, "
			    "mailto:reports@thirdparty.example!50k" },
		};
		size_t k;

		tap_ok(f != NULL && strncmp(ps.p[0], "Content-Type: text/plain",
		    24) == 0, "error report: first part text/plain");
		for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
			v[0] = '\0';
			if (f != NULL)
				header(f + 4, flen, fields[k].k, v, sizeof(v));
			tap_is_str(v, fields[k].v, "error report: field %s",
			    fields[k].k);
		}
		tap_ok(strncmp(ps.p[1], "Content-Type: text/plain", 24) == 0 &&
		    memmem(ps.p[1], ps.len[1], "123456 bytes", 12) != NULL,
		    "error report: second part says it in words");
	} else
		tap_skip(8, "parts");
	python_check("error report", eml, len, "123456", 6, "",
	    "Report Domain: example.com Submitter: mail.receiver.example "
	    "Report-ID: <1709251200.0123456789abcdef.1709337660>", "error");
	free(eml);
	for (i = 0; i < sizeof(bad_uris) / sizeof(bad_uris[0]); i++) {
		eml = (char *)1;
		tap_ok(rpt_mail_error_build(&m, 1, bad_uris[i], 1, &eml,
		    &len) == DM_PERMFAIL && errno == EINVAL && eml == NULL,
		    "error report: bad URI %zu refused", i);
	}
	tap_ok(rpt_mail_error_build(&m, 1, uris, 0, &eml, &len) == DM_PERMFAIL,
	    "error report: no URIs refused");
}

int
main(void)
{
	test_gzip();
	test_mail();
	test_folding();
	test_refused();
	test_error_report();
	return tap_done();
}
