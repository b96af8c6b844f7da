/*
 * tests/unit/test_rptxml.c - aggregate report XML: golden files in both
 * formats (tests/fixtures/reports/NAME.in -> NAME-7489.ref, NAME-9990.ref;
 * REGEN=1 rewrites the .ref files), every document validated by xmllint
 * against its schema and parsed back by libxml2 with its counts summed,
 * texts no byte can break, source IPs in both formats, texts that cannot
 * be read, the DKIM limit, a failing sink, and a 100,000-row report.
 *
 * NAME.in: '#' comments; "key value" meta lines (org_name email
 * extra_contact_info report_id generator begin end domain policy, and
 * "skipped N": rows the writer is expected to leave out); and
 * "count<TAB>row text" lines.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <dirent.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "rptxml.h"
#include "tap.h"

#define NS9990 "urn:ietf:params:xml:ns:dmarc-2.0"

static const char *const golden[] = {
	"reject-spoof", "mixed", "ipv6", "envto", "minimal-policy",
	"rua-size",
};

static const struct fmt {
	enum rpt_format f;
	const char *tag;	/* .ref suffix */
	const char *xsd;
} fmts[] = {
	{ RPT_RFC7489, "7489", "rfc7489-appendix-c-fixed-nons.xsd" },
	{ RPT_RFC9990, "9990", "dmarc-2.0-draft32.xsd" },
};

static char tmpdir[] = "/tmp/test_rptxml.XXXXXX";
static char *xmllint;		/* NULL: not installed */
static int ndoc;		/* documents written to tmpdir */

/* ---- small helpers ---------------------------------------------------- */

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		tap_bail("out of memory");
	return p;
}

static char *
read_file(const char *path, size_t *len)
{
	struct stat sb;
	char *p;
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	if (fstat(fileno(fp), &sb) < 0 || (p = malloc((size_t)sb.st_size +
	    1)) == NULL)
		tap_bail("read %s", path);
	*len = fread(p, 1, (size_t)sb.st_size, fp);
	p[*len] = '\0';
	fclose(fp);
	return p;
}

/* The canonical escaping of dm_row.h, for values the tests build. */
static char *
esc(const char *s, size_t n)
{
	char *out = malloc(n * 3 + 1), *o = out;
	size_t i;

	if (out == NULL)
		tap_bail("out of memory");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c && strchr(".@_+-", c)))
			*o++ = (char)c;
		else
			o += sprintf(o, "%%%02X", c);
	}
	*o = '\0';
	return out;
}

static char *
find_xmllint(void)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, full[4096];

	if (path == NULL)
		path = "/usr/bin:/bin";
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(full, sizeof(full), "%s/xmllint", dir);
		if (access(full, X_OK) == 0) {
			free(copy);
			return xstrdup(full);
		}
	}
	free(copy);
	return NULL;
}

/*
 * xmllint --noout --schema XSD FILE; 0 when it validates. Its messages
 * go to FILE.log, printed as diagnostics on failure.
 */
static int
run_xmllint(const char *xsd, const char *file)
{
	char log[4200], *text;
	size_t len;
	pid_t pid;
	int st, fd;

	snprintf(log, sizeof(log), "%s.log", file);
	if ((pid = fork()) < 0)
		tap_bail("fork: %s", strerror(errno));
	if (pid == 0) {
		if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(xmllint, "xmllint", "--noout", "--nonet", "--schema", xsd,
		    file, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			tap_bail("waitpid: %s", strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if ((text = read_file(log, &len)) != NULL) {
		char *line, *save = NULL;

		for (line = strtok_r(text, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			tap_diag("xmllint: %s", line);
		free(text);
	}
	return -1;
}

/* Validate a document against the format's schema (or skip). */
static void
validate(const struct fmt *f, const char *xml, size_t len, const char *name)
{
	char file[4096], xsd[4096];

	if (xmllint == NULL) {
		tap_skip(1, "xmllint not installed (libxml2-utils)");
		return;
	}
	snprintf(file, sizeof(file), "%s/doc%d-%s.xml", tmpdir, ++ndoc,
	    f->tag);
	snprintf(xsd, sizeof(xsd), "%s/reports/%s", tap_fixture_dir(),
	    f->xsd);
	if (tap_write_file(file, xml, len) != 0)
		tap_bail("write %s", file);
	tap_ok(run_xmllint(xsd, file) == 0, "%s (%s): valid against %s",
	    name, f->tag, f->xsd);
}

/* ---- reading documents back ------------------------------------------ */

static bool
named(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	    strcmp((const char *)n->name, name) == 0;
}

/* Elements named name anywhere under n, in document order. */
static size_t
find_all(xmlNode *n, const char *name, xmlNode **out, size_t max,
    size_t have)
{
	for (; n != NULL; n = n->next) {
		if (named(n, name)) {
			if (have < max)
				out[have] = n;
			have++;
		}
		have = find_all(n->children, name, out, max, have);
	}
	return have;
}

/* Text of the first element named name under n ("" if none). */
static char *
text_of(xmlNode *n, const char *name)
{
	xmlNode *hit = NULL;
	xmlChar *c;
	char *s;

	if (find_all(n, name, &hit, 1, 0) == 0)
		return xstrdup("\x01(absent)");
	c = xmlNodeGetContent(hit);
	s = xstrdup(c != NULL ? (const char *)c : "");
	xmlFree(c);
	return s;
}

/* Each record's count; sum, and the number of records. */
static uint64_t
sum_counts(xmlNode *root, size_t *nrec)
{
	xmlNode *rec, *row, *c;
	uint64_t sum = 0;
	xmlChar *t;

	*nrec = 0;
	for (rec = root->children; rec != NULL; rec = rec->next) {
		if (!named(rec, "record"))
			continue;
		(*nrec)++;
		for (row = rec->children; row != NULL; row = row->next)
			if (named(row, "row"))
				for (c = row->children; c != NULL; c = c->next)
					if (named(c, "count")) {
						t = xmlNodeGetContent(c);
						sum += strtoull((char *)t, NULL,
						    10);
						xmlFree(t);
					}
	}
	return sum;
}

static xmlDoc *
parse(const char *xml, size_t len)
{
	return xmlReadMemory(xml, (int)len, "report.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_HUGE);
}

/* Parses, root in the right namespace, counts sum to want. */
static void
check_parse(const struct fmt *f, const char *xml, size_t len,
    uint64_t want, size_t want_rec, const char *name)
{
	xmlDoc *d = parse(xml, len);
	xmlNode *root;
	size_t nrec;
	uint64_t sum;
	const char *ns;

	if (!tap_ok(d != NULL, "%s (%s): libxml2 parses it", name, f->tag)) {
		tap_skip(2, "no document");
		return;
	}
	root = xmlDocGetRootElement(d);
	ns = root->ns != NULL ? (const char *)root->ns->href : NULL;
	tap_ok(named(root, "feedback") && (f->f == RPT_RFC9990 ?
	    ns != NULL && strcmp(ns, NS9990) == 0 : ns == NULL),
	    "%s (%s): root feedback in its namespace", name, f->tag);
	sum = sum_counts(root, &nrec);
	tap_ok(sum == want && nrec == want_rec,
	    "%s (%s): %zu records, counts sum to %" PRIu64, name, f->tag,
	    want_rec, want);
	if (sum != want || nrec != want_rec)
		tap_diag("got %zu records summing to %" PRIu64, nrec, sum);
	xmlFreeDoc(d);
}

/* ---- golden files ----------------------------------------------------- */

struct input {
	rpt_meta m;
	rpt_row *rows;
	size_t n, cap;
	uint64_t sum;		/* all counts */
	size_t skipped;
	char *strs[16];
	size_t nstrs;
	char **rowtexts;
};

static const char *
keep(struct input *in, const char *s)
{
	if (in->nstrs == sizeof(in->strs) / sizeof(in->strs[0]))
		tap_bail("too many meta lines");
	return in->strs[in->nstrs++] = xstrdup(s);
}

static void
input_add(struct input *in, const char *row, uint64_t count)
{
	if (in->n == in->cap) {
		in->cap = in->cap ? in->cap * 2 : 16;
		in->rows = reallocarray(in->rows, in->cap, sizeof(*in->rows));
		in->rowtexts = reallocarray(in->rowtexts, in->cap,
		    sizeof(*in->rowtexts));
		if (in->rows == NULL || in->rowtexts == NULL)
			tap_bail("out of memory");
	}
	in->rowtexts[in->n] = xstrdup(row);
	in->rows[in->n].row = in->rowtexts[in->n];
	in->rows[in->n].count = count;
	in->sum += count;
	in->n++;
}

static void
input_free(struct input *in)
{
	size_t i;

	for (i = 0; i < in->nstrs; i++)
		free(in->strs[i]);
	for (i = 0; i < in->n; i++)
		free(in->rowtexts[i]);
	free(in->rowtexts);
	free(in->rows);
}

static void
input_read(const char *path, struct input *in)
{
	char *text, *line, *save = NULL, *val, *tab;
	size_t len;

	memset(in, 0, sizeof(*in));
	if ((text = read_file(path, &len)) == NULL)
		tap_bail("cannot read %s", path);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (*line == '#' || *line == '\0')
			continue;
		if (*line >= '0' && *line <= '9') {
			if ((tab = strchr(line, '\t')) == NULL)
				tap_bail("%s: row without a tab: %s", path,
				    line);
			*tab = '\0';
			input_add(in, tab + 1, strtoull(line, NULL, 10));
			continue;
		}
		if ((val = strchr(line, ' ')) == NULL)
			tap_bail("%s: bad line: %s", path, line);
		*val++ = '\0';
		if (strcmp(line, "org_name") == 0)
			in->m.org_name = keep(in, val);
		else if (strcmp(line, "email") == 0)
			in->m.email = keep(in, val);
		else if (strcmp(line, "extra_contact_info") == 0)
			in->m.extra_contact = keep(in, val);
		else if (strcmp(line, "report_id") == 0)
			in->m.report_id = keep(in, val);
		else if (strcmp(line, "generator") == 0)
			in->m.generator = keep(in, val);
		else if (strcmp(line, "domain") == 0)
			in->m.domain = keep(in, val);
		else if (strcmp(line, "policy") == 0)
			in->m.policy = keep(in, val);
		else if (strcmp(line, "begin") == 0)
			in->m.begin = strtoll(val, NULL, 10);
		else if (strcmp(line, "end") == 0)
			in->m.end = strtoll(val, NULL, 10);
		else if (strcmp(line, "skipped") == 0)
			in->skipped = strtoul(val, NULL, 10);
		else
			tap_bail("%s: unknown key %s", path, line);
	}
	free(text);
}

/* Counts of the rows with a client address ("ip=;" is skipped). */
static uint64_t
kept_sum(const struct input *in)
{
	uint64_t sum = 0;
	size_t i;
	char ip[8];

	for (i = 0; i < in->n; i++) {
		if (sscanf(in->rows[i].row, "ip=%7[^;]", ip) != 1)
			continue;	/* "ip=;": no address, skipped */
		sum += in->rows[i].count;
	}
	return sum;
}

/* Keep the output for a look (KEEP=1 keeps the directory). */
static void
mismatch(const char *ref, const char *name, const char *tag,
    const char *xml, size_t len)
{
	char out[4200];

	snprintf(out, sizeof(out), "%s/%s-%s.xml", tmpdir, name, tag);
	if (tap_write_file(out, xml, len) == 0)
		tap_diag("differs: rerun with KEEP=1, then diff -u %s %s", ref, out);
}

static void
test_golden(const char *name)
{
	char path[4096], ref[4096], err[256];
	struct input in;
	rpt_stats st;
	char *xml, *want;
	size_t len, wlen, i;
	int rc;

	snprintf(path, sizeof(path), "%s/reports/%s.in", tap_fixture_dir(),
	    name);
	input_read(path, &in);
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		in.m.format = fmts[i].f;
		rc = rpt_xml_write(&in.m, in.rows, in.n, &xml, &len, &st, err,
		    sizeof(err));
		if (!tap_ok(rc == 0, "%s (%s): written", name, fmts[i].tag)) {
			tap_diag("error: %s", err);
			continue;
		}
		tap_ok(st.records == in.n - in.skipped &&
		    st.skipped == in.skipped && st.messages == kept_sum(&in),
		    "%s (%s): stats %zu records, %zu skipped", name,
		    fmts[i].tag, in.n - in.skipped, in.skipped);
		snprintf(ref, sizeof(ref), "%s/reports/%s-%s.ref",
		    tap_fixture_dir(), name, fmts[i].tag);
		if (getenv("REGEN") != NULL) {
			tap_ok(tap_write_file(ref, xml, len) == 0, "%s: regenerated",
			    ref);
		} else if ((want = read_file(ref, &wlen)) == NULL) {
			tap_ok(0, "%s: missing (REGEN=1 writes it)", ref);
		} else {
			if (!tap_ok(wlen == len && memcmp(want, xml, len) == 0,
			    "%s (%s): matches %s-%s.ref", name, fmts[i].tag,
			    name, fmts[i].tag))
				mismatch(ref, name, fmts[i].tag, xml, len);
			free(want);
		}
		validate(&fmts[i], xml, len, name);
		check_parse(&fmts[i], xml, len, kept_sum(&in),
		    in.n - in.skipped, name);
		free(xml);
	}
	input_free(&in);
}

/* ---- single rows, read back ------------------------------------------ */

static const char base_policy[] = "p=reject;sp=reject;np=reject;pct=100;"
    "t=n;adkim=r;aspf=r;fo=0;psd=u;rua=mailto%3Ar@a.example;ruf=;"
    "dm=treewalk;";

static rpt_meta
meta(enum rpt_format f, const char *policy)
{
	rpt_meta m = { "Receiver", "dmarc@receiver.example", NULL, "id-1",
	    "dmarc-milter test", 86400, 2 * 86400, "a.example", policy, f };

	return m;
}

/*
 * One row written in format f; the document is validated and parsed.
 * Returns the parsed document or NULL.
 */
static xmlDoc *
one_row(enum rpt_format f, const char *row, const char *name)
{
	rpt_meta m = meta(f, base_policy);
	rpt_row r = { row, 3 };
	char *xml, err[256];
	size_t len;
	xmlDoc *d;

	if (rpt_xml_write(&m, &r, 1, &xml, &len, NULL, err, sizeof(err)) !=
	    DM_OK) {
		tap_diag("%s: %s", name, err);
		return NULL;
	}
	validate(&fmts[f == RPT_RFC9990], xml, len, name);
	d = parse(xml, len);
	free(xml);
	return d;
}

static const struct text_case {
	const char *name;
	const char *in;		/* a reason comment, raw bytes */
	const char *want;	/* its text in the parsed document */
} text_cases[] = {
	{ "markup", "a<b>&c\"d'e]]>", "a<b>&c\"d'e]]>" },
	{ "newline and tab kept", "one\ntwo\tthree", "one\ntwo\tthree" },
	{ "control byte", "x\x01y", "x\xEF\xBF\xBDy" },
	{ "escape, CR, DEL", "\x1b[0m\r\x7f", "\xEF\xBF\xBD[0m\xEF\xBF\xBD"
	    "\xEF\xBF\xBD" },
	{ "UTF-8 kept", "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80",
	    "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80" },
	{ "Latin-1 byte", "caf\xE9!", "caf\xEF\xBF\xBD!" },
	{ "truncated sequence", "ab\xE2\x82", "ab\xEF\xBF\xBD\xEF\xBF\xBD" },
	{ "overlong", "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD" },
	{ "surrogate", "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD"
	    "\xEF\xBF\xBD" },
	{ "U+FFFE", "\xEF\xBF\xBE", "\xEF\xBF\xBD" },
	{ "C1 control", "\xC2\x85", "\xEF\xBF\xBD" },
	{ "above U+10FFFF", "\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD"
	    "\xEF\xBF\xBD\xEF\xBF\xBD" },
};

/* Hostile bytes in a comment, a selector and a domain. */
static void
test_texts(void)
{
	char row[1024], *e, *got;
	xmlDoc *d;
	size_t i, k;

	for (i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		const struct text_case *t = &text_cases[i];

		e = esc(t->in, strlen(t->in));
		for (k = 0; k < 2; k++) {
			snprintf(row, sizeof(row), "ip=192.0.2.1;hf=%s;ef=;"
			    "disp=none;r=local_policy/%s;ad=a.example/%s/"
			    "pass;dkim=fail;spf=fail;as=x/mfrom/none;", e, e,
			    e);
			d = one_row(fmts[k].f, row, t->name);
			if (!tap_ok(d != NULL, "%s (%s): parses", t->name,
			    fmts[k].tag)) {
				tap_skip(3, "no document");
				continue;
			}
			got = text_of(xmlDocGetRootElement(d), "comment");
			tap_is_str(got, t->want, "%s (%s): comment", t->name,
			    fmts[k].tag);
			free(got);
			got = text_of(xmlDocGetRootElement(d), "selector");
			tap_is_str(got, t->want, "%s (%s): selector", t->name,
			    fmts[k].tag);
			free(got);
			got = text_of(xmlDocGetRootElement(d), "header_from");
			tap_is_str(got, t->want, "%s (%s): header_from",
			    t->name, fmts[k].tag);
			free(got);
			xmlFreeDoc(d);
		}
		free(e);
	}
}

static const struct ip_case {
	const char *in;
	const char *want7489, *want9990;	/* NULL: row skipped */
} ip_cases[] = {
	{ "192.0.2.1", "192.0.2.1", "192.0.2.1" },
	{ "2001:db8::1", "2001:db8:0:0:0:0:0:1", "2001:db8::1" },
	{ "2001:DB8:0:0:0:0:0:1", "2001:db8:0:0:0:0:0:1", "2001:db8::1" },
	{ "fe80::ab:cdef", "fe80:0:0:0:0:0:ab:cdef", "fe80::ab:cdef" },
	{ "::", "0:0:0:0:0:0:0:0", "::" },
	{ "::ffff:198.51.100.4", "198.51.100.4", "198.51.100.4" },
	{ "::ffff:c633:6404", "198.51.100.4", "198.51.100.4" },
	{ "", NULL, NULL },
	{ "unknown", NULL, NULL },
	{ "192.0.2.256", NULL, NULL },
	{ "fe80::1%25eth0", NULL, NULL },
};

/* Source IPs in each format; rows without an address are skipped. */
static void
test_ips(void)
{
	rpt_row r[2];
	rpt_stats st;
	char row[512], *xml, *got, err[256];
	size_t i, k, len;
	xmlDoc *d;

	for (i = 0; i < sizeof(ip_cases) / sizeof(ip_cases[0]); i++) {
		const struct ip_case *c = &ip_cases[i];

		snprintf(row, sizeof(row), "ip=%s;hf=a.example;ef=a.example;"
		    "disp=none;r=;ad=;dkim=fail;spf=fail;as=a.example/mfrom/"
		    "none;", c->in);
		r[0].row = row;
		r[0].count = 2;
		/* a second, good row, so that a skipped one still leaves a
		   document */
		r[1].row = "ip=192.0.2.99;hf=a.example;ef=a.example;disp=none;"
		    "r=;ad=;dkim=fail;spf=fail;as=a.example/mfrom/none;";
		r[1].count = 1;
		for (k = 0; k < 2; k++) {
			rpt_meta m = meta(fmts[k].f, base_policy);
			const char *want = k ? c->want9990 : c->want7489;

			if (!tap_ok(rpt_xml_write(&m, r, 2, &xml, &len, &st,
			    err, sizeof(err)) == 0, "ip '%s' (%s): written",
			    c->in, fmts[k].tag)) {
				tap_diag("%s", err);
				continue;
			}
			tap_is_int((long)st.skipped, want ? 0 : 1,
			    "ip '%s' (%s): skipped", c->in, fmts[k].tag);
			validate(&fmts[k], xml, len, c->in);
			d = parse(xml, len);
			got = text_of(xmlDocGetRootElement(d), "source_ip");
			tap_is_str(got, want ? want : "192.0.2.99",
			    "ip '%s' (%s): source_ip", c->in, fmts[k].tag);
			free(got);
			xmlFreeDoc(d);
			free(xml);
		}
	}
}

/* ---- mappings between the formats ------------------------------------ */

static const struct map_case {
	const char *name;
	const char *row;
	const char *elem;	/* first element of that name */
	const char *want7489, *want9990;	/* its text */
} map_cases[] = {
	{ "DMARC pass, nothing applied: pass in 9990",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=none;r=;"
	    "ad=a.example/s/pass;dkim=pass;spf=fail;as=a.example/mfrom/fail;",
	    "disposition", "none", "pass" },
	{ "SPF-only pass is a pass too",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=none;r=;ad=;"
	    "dkim=fail;spf=pass;as=a.example/mfrom/pass;",
	    "disposition", "none", "pass" },
	{ "a failing row stepped down stays none",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=none;"
	    "r=trusted_forwarder/;ad=;dkim=fail;spf=fail;"
	    "as=a.example/mfrom/fail;",
	    "disposition", "none", "none" },
	{ "policy_test_mode: other in 7489",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=none;"
	    "r=policy_test_mode/t%3Dy;ad=;dkim=fail;spf=fail;"
	    "as=a.example/mfrom/fail;",
	    "type", "other", "policy_test_mode" },
	{ "policy_test_mode: its comment",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=none;"
	    "r=policy_test_mode/t%3Dy;ad=;dkim=fail;spf=fail;"
	    "as=a.example/mfrom/fail;",
	    "comment", "policy_test_mode: t=y", "t=y" },
	{ "policy_test_mode without a comment",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=none;"
	    "r=policy_test_mode/;ad=;dkim=fail;spf=fail;"
	    "as=a.example/mfrom/fail;",
	    "comment", "policy_test_mode", "\x01(absent)" },
	{ "sampled_out: other in 9990",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=none;"
	    "r=sampled_out/pct%3D50;ad=;dkim=fail;spf=fail;"
	    "as=a.example/mfrom/fail;",
	    "comment", "pct=50", "sampled_out: pct=50" },
	{ "forwarded: other in 9990",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=none;"
	    "r=forwarded/;ad=;dkim=fail;spf=fail;as=a.example/mfrom/fail;",
	    "type", "forwarded", "other" },
	{ "null MAIL FROM: envelope_from empty",
	    "ip=192.0.2.1;hf=a.example;ef=;disp=reject;r=;ad=;dkim=fail;"
	    "spf=fail;as=mx.example/helo/pass;",
	    "envelope_from", "", "" },
	{ "no ef key: envelope_from required in 7489 only",
	    "ip=192.0.2.1;hf=a.example;disp=reject;r=;ad=;dkim=fail;"
	    "spf=fail;as=mx.example/helo/pass;",
	    "envelope_from", "", "\x01(absent)" },
	{ "helo scope: only mfrom exists in 9990",
	    "ip=192.0.2.1;hf=a.example;ef=;disp=reject;r=;ad=;dkim=fail;"
	    "spf=fail;as=mx.example/helo/pass;",
	    "scope", "helo", "\x01(absent)" },
	{ "empty selector: required in 9990 only",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=reject;r=;"
	    "ad=a.example//fail;dkim=fail;spf=fail;as=a.example/mfrom/fail;",
	    "selector", "\x01(absent)", "" },
	{ "no envelope_to unless the row has one",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=reject;r=;ad=;"
	    "dkim=fail;spf=fail;as=a.example/mfrom/fail;",
	    "envelope_to", "\x01(absent)", "\x01(absent)" },
	{ "no auth results but SPF",
	    "ip=192.0.2.1;hf=a.example;ef=a.example;disp=reject;r=;ad=;"
	    "dkim=fail;spf=fail;as=a.example/mfrom/temperror;",
	    "dkim", "fail", "fail" },
};

static void
test_maps(void)
{
	xmlDoc *d;
	char *got;
	size_t i, k;

	for (i = 0; i < sizeof(map_cases) / sizeof(map_cases[0]); i++) {
		const struct map_case *c = &map_cases[i];

		for (k = 0; k < 2; k++) {
			d = one_row(fmts[k].f, c->row, c->name);
			if (!tap_ok(d != NULL, "%s (%s): written", c->name,
			    fmts[k].tag))
				continue;
			got = text_of(xmlDocGetRootElement(d), c->elem);
			tap_is_str(got, k ? c->want9990 : c->want7489,
			    "%s (%s): <%s>", c->name, fmts[k].tag, c->elem);
			free(got);
			xmlFreeDoc(d);
		}
	}
}

/* ---- texts that cannot be read --------------------------------------- */

static const char good_row[] = "ip=192.0.2.1;hf=a.example;ef=a.example;"
    "disp=none;r=;ad=a.example/s/pass;dkim=pass;spf=pass;"
    "as=a.example/mfrom/pass;";

static const struct bad_case {
	const char *name;
	const char *policy;	/* NULL: base_policy */
	const char *row;	/* NULL: good_row */
	const char *err;	/* part of the message */
} bad_cases[] = {
	{ "policy without p", "sp=none;pct=100;", NULL, "no p= tag" },
	{ "policy p=bogus", "p=bogus;", NULL, "p=bogus" },
	{ "policy sp=bogus", "p=none;sp=bogus;", NULL, "sp=bogus" },
	{ "policy pct=101", "p=none;pct=101;", NULL, "pct=101" },
	{ "policy pct=x", "p=none;pct=x;", NULL, "pct=x" },
	{ "policy adkim=x", "p=none;adkim=x;", NULL, "adkim=x" },
	{ "policy t=maybe", "p=none;t=maybe;", NULL, "t=maybe" },
	{ "policy dm=dns", "p=none;dm=dns;", NULL, "dm=dns" },
	{ "empty policy", "", NULL, "no p= tag" },
	{ "row without ip", NULL, "hf=a.example;disp=none;dkim=pass;"
	    "spf=pass;as=a.example/mfrom/pass;", "row 1: no ip= key" },
	{ "row without hf", NULL, "ip=192.0.2.1;disp=none;dkim=pass;"
	    "spf=pass;as=a.example/mfrom/pass;", "no hf= key" },
	{ "row without as", NULL, "ip=192.0.2.1;hf=a.example;disp=none;"
	    "dkim=pass;spf=pass;", "no as= key" },
	{ "disp=maybe", NULL, "ip=192.0.2.1;hf=a.example;disp=maybe;"
	    "dkim=pass;spf=pass;as=a.example/mfrom/pass;", "bad disp" },
	{ "dkim=yes", NULL, "ip=192.0.2.1;hf=a.example;disp=none;"
	    "dkim=yes;spf=pass;as=a.example/mfrom/pass;", "bad disp" },
	{ "unknown reason", NULL, "ip=192.0.2.1;hf=a.example;disp=none;"
	    "r=whim/x;dkim=pass;spf=pass;as=a.example/mfrom/pass;",
	    "unknown reason type whim" },
	{ "reason without comment part", NULL, "ip=192.0.2.1;hf=a.example;"
	    "disp=none;r=other;dkim=pass;spf=pass;as=a.example/mfrom/pass;",
	    "bad reason" },
	{ "reason with 3 parts", NULL, "ip=192.0.2.1;hf=a.example;"
	    "disp=none;r=other/a/b;dkim=pass;spf=pass;"
	    "as=a.example/mfrom/pass;", "bad reason" },
	{ "DKIM result with 2 parts", NULL, "ip=192.0.2.1;hf=a.example;"
	    "disp=none;ad=a.example/pass;dkim=pass;spf=pass;"
	    "as=a.example/mfrom/pass;", "bad DKIM result" },
	{ "DKIM result unknown", NULL, "ip=192.0.2.1;hf=a.example;"
	    "disp=none;ad=a.example/s/great;dkim=pass;spf=pass;"
	    "as=a.example/mfrom/pass;", "unknown DKIM result great" },
	{ "SPF scope unknown", NULL, "ip=192.0.2.1;hf=a.example;disp=none;"
	    "dkim=pass;spf=pass;as=a.example/rcpt/pass;", "SPF scope" },
	{ "SPF result unknown", NULL, "ip=192.0.2.1;hf=a.example;"
	    "disp=none;dkim=pass;spf=pass;as=a.example/mfrom/unknown;",
	    "SPF scope or result" },
	{ "SPF with 2 parts", NULL, "ip=192.0.2.1;hf=a.example;disp=none;"
	    "dkim=pass;spf=pass;as=a.example/pass;", "bad SPF result" },
	{ "only a row without address", NULL, "ip=;hf=a.example;disp=none;"
	    "dkim=pass;spf=pass;as=a.example/mfrom/pass;",
	    "no row to report (1 skipped)" },
};

static void
test_bad(void)
{
	char *xml, err[256];
	size_t i, k, len;
	int rc;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		rpt_row r = { c->row ? c->row : good_row, 1 };

		for (k = 0; k < 2; k++) {
			rpt_meta m = meta(fmts[k].f,
			    c->policy ? c->policy : base_policy);

			xml = (char *)&rc;
			strlcpy(err, "", sizeof(err));
			rc = rpt_xml_write(&m, &r, 1, &xml, &len, NULL, err,
			    sizeof(err));
			tap_ok(rc == DM_PERMFAIL && xml == NULL &&
			    strstr(err, c->err), "%s (%s): refused", c->name,
			    fmts[k].tag);
			if (rc != DM_PERMFAIL || strstr(err, c->err) == NULL)
				tap_diag("rc %d, err '%s', want '%s'", rc, err,
				    c->err);
			if (rc == 0)
				free(xml);
		}
	}
}

/* Meta data, date range, count 0, a failing sink. */
static int
failing_sink(void *ctx, const char *buf, size_t len)
{
	size_t *left = ctx;

	(void)buf;
	if (len > *left)
		return -1;
	*left -= len;
	return 0;
}

static void
quiet(void *ctx, const char *fmt, ...)
{
	(void)ctx;
	(void)fmt;
}

static void
test_meta(void)
{
	rpt_meta m = meta(RPT_RFC7489, base_policy);
	rpt_row r[2] = { { good_row, 0 }, { good_row, 4 } };
	rpt_stats st;
	char *xml, err[256], *got;
	size_t len, left;
	xmlDoc *d;

	m.org_name = NULL;
	tap_ok(rpt_xml_write(&m, r, 2, &xml, &len, NULL, err, sizeof(err)) ==
	    DM_PERMFAIL && strstr(err, "required"), "no org_name: refused");
	m = meta(RPT_RFC7489, base_policy);
	m.end = m.begin;
	tap_ok(rpt_xml_write(&m, r, 2, &xml, &len, NULL, err, sizeof(err)) ==
	    DM_PERMFAIL && strstr(err, "date range"), "empty date range: refused");
	m = meta(RPT_RFC7489, base_policy);
	tap_ok(rpt_xml_write(&m, r, 0, &xml, &len, NULL, err, sizeof(err)) ==
	    DM_PERMFAIL && strstr(err, "no row"), "no rows: refused");
	m.format = (enum rpt_format)7;
	tap_ok(rpt_xml_write(&m, r, 2, &xml, &len, NULL, err, sizeof(err)) ==
	    DM_PERMFAIL && strstr(err, "format"), "unknown format: refused");

	m = meta(RPT_RFC7489, base_policy);
	tap_ok(rpt_xml_write(&m, r, 2, &xml, &len, &st, err, sizeof(err)) ==
	    0 && st.records == 1 && st.skipped == 1 && st.messages == 4,
	    "a count of 0 is skipped");
	d = parse(xml, len);
	got = text_of(xmlDocGetRootElement(d), "end");
	tap_is_str(got, "172799", "date_range end is the last second");
	free(got);
	got = text_of(xmlDocGetRootElement(d), "generator");
	tap_is_str(got, "\x01(absent)", "no generator in 7489");
	free(got);
	got = text_of(xmlDocGetRootElement(d), "version");
	tap_is_str(got, "1.0", "version 1.0");
	free(got);
	xmlFreeDoc(d);
	free(xml);

	left = 300;
	xmlSetGenericErrorFunc(NULL, quiet);	/* libxml2's "flush error" */
	tap_ok(rpt_xml_stream(&m, r, 2, failing_sink, &left, NULL, err,
	    sizeof(err)) == DM_TEMPFAIL && strstr(err, "write error"),
	    "a failing sink fails the write (temporarily: it is I/O)");
	xmlSetGenericErrorFunc(NULL, NULL);
}

/* More than 100 DKIM results: 100 written, passes first. */
static void
test_many_sigs(void)
{
	char *row, *p, *xml, err[256], *got;
	xmlNode *hits[200];
	rpt_meta m = meta(RPT_RFC9990, base_policy);
	rpt_row r;
	size_t len, n, i, npass = 0;
	xmlDoc *d;

	if ((row = malloc(16384)) == NULL)
		tap_bail("out of memory");
	p = row + sprintf(row, "ip=192.0.2.1;hf=a.example;ef=a.example;"
	    "disp=none;r=;ad=");
	for (i = 0; i < 150; i++)
		p += sprintf(p, "%sd%zu.example/s/%s", i ? "," : "", i,
		    i % 50 == 49 ? "pass" : "fail");
	strcpy(p, ";dkim=pass;spf=fail;as=a.example/mfrom/fail;");
	r.row = row;
	r.count = 1;
	if (!tap_ok(rpt_xml_write(&m, &r, 1, &xml, &len, NULL, err,
	    sizeof(err)) == 0, "150 signatures: written")) {
		tap_diag("%s", err);
		free(row);
		return;
	}
	validate(&fmts[1], xml, len, "150 signatures");
	d = parse(xml, len);
	n = find_all(xmlDocGetRootElement(d), "auth_results", hits, 1, 0);
	n = n ? find_all(hits[0]->children, "dkim", hits, 200, 0) : 0;
	tap_is_int((long)n, 100, "150 signatures: 100 reported");
	for (i = 0; i < n && i < 200; i++) {
		got = text_of(hits[i]->children, "result");
		if (strcmp(got, "pass") == 0 && i == npass)
			npass++;
		free(got);
	}
	tap_is_int((long)npass, 3, "150 signatures: the 3 passes first");
	got = text_of(hits[3]->children, "domain");
	tap_is_str(got, "d0.example", "... then the others in order");
	free(got);
	xmlFreeDoc(d);
	free(xml);
	free(row);
}

/* A 100,000-row report: written, valid, counts sum; figures printed. */
static void
test_big(void)
{
	enum { N = 100000 };
	rpt_row *rows = calloc(N, sizeof(*rows));
	char **texts = calloc(N, sizeof(*texts));
	struct timespec t0, t1;
	uint64_t want = 0;
	rpt_stats st;
	char *xml, err[256], ip[64];
	size_t i, len, k;
	rpt_meta m;

	if (rows == NULL || texts == NULL)
		tap_bail("out of memory");
	for (i = 0; i < N; i++) {
		if (i % 3 == 0)
			snprintf(ip, sizeof(ip), "2001:db8::%zx:%zx", i >> 16,
			    i & 0xffff);
		else
			snprintf(ip, sizeof(ip), "10.%zu.%zu.%zu",
			    (i >> 16) & 255, (i >> 8) & 255, i & 255);
		if (asprintf(&texts[i], "ip=%s;hf=a.example;"
		    "ef=bounce%zu.a.example;disp=%s;r=%s;ad=a.example/s%zu/%s,"
		    "esp.example/k/pass;dkim=%s;spf=fail;"
		    "as=bounce%zu.a.example/mfrom/softfail;", ip, i % 7,
		    i % 2 ? "none" : "reject",
		    i % 5 ? "" : "local_policy/list%20%3Cx%3E",
		    i % 11, i % 2 ? "pass" : "fail",
		    i % 2 ? "pass" : "fail", i % 7) < 0)
			tap_bail("out of memory");
		rows[i].row = texts[i];
		rows[i].count = i % 13 + 1;
		want += rows[i].count;
	}
	for (k = 0; k < 2; k++) {
		m = meta(fmts[k].f, base_policy);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (!tap_ok(rpt_xml_write(&m, rows, N, &xml, &len, &st, err,
		    sizeof(err)) == 0, "100000 rows (%s): written",
		    fmts[k].tag)) {
			tap_diag("%s", err);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		tap_diag("100000 rows (%s): %zu bytes in %.3f s", fmts[k].tag,
		    len, (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		tap_ok(st.records == N && st.skipped == 0 &&
		    st.messages == want, "100000 rows (%s): all written",
		    fmts[k].tag);
		validate(&fmts[k], xml, len, "100000 rows");
		check_parse(&fmts[k], xml, len, want, N, "100000 rows");
		free(xml);
	}
	for (i = 0; i < N; i++)
		free(texts[i]);
	free(texts);
	free(rows);
}

/* Remove what this test wrote into its own mkdtemp directory. */
static void
cleanup(void)
{
	char f[4400];
	struct dirent *e;
	DIR *d;

	if ((d = opendir(tmpdir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s", tmpdir, e->d_name);
		unlink(f);
	}
	closedir(d);
	rmdir(tmpdir);
}

int
main(void)
{
	size_t i;
	int rc;

	if (mkdtemp(tmpdir) == NULL)
		tap_bail("mkdtemp: %s", strerror(errno));
	xmllint = find_xmllint();
	if (xmllint == NULL)
		tap_diag("xmllint not found: schema checks skipped");
	for (i = 0; i < sizeof(golden) / sizeof(golden[0]); i++)
		test_golden(golden[i]);
	test_texts();
	test_ips();
	test_maps();
	test_bad();
	test_meta();
	test_many_sigs();
	test_big();
	rc = tap_done();
	if (rc == 0 || getenv("KEEP") == NULL)
		cleanup();
	else
		tap_diag("documents kept in %s", tmpdir);
	free(xmllint);
	xmlCleanupParser();
	return rc;
}
