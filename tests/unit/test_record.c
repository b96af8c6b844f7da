/*
 * tests/unit/test_record.c - the DMARC record parser, row by row: the
 * example records of RFC 7489 and RFC 9989 Appendix B, every tag, the
 * defaults, case and whitespace, what is not a DMARC record, the
 * invalid-record rule for p/sp/np, bad values, duplicates, unknown tags,
 * NUL bytes and a 64 KB record.
 *
 * A row lists only the fields it is about, as "key=value" words, and each
 * word is one check. Every input is copied into a buffer of exactly its
 * length, so a read past the end shows in valgrind.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dm_record.h"
#include "tap.h"

#define LIT(s)	s, sizeof(s) - 1

#define RUA_A	"rua=mailto:a@x.example"

static const struct row {
	const char *name;
	const char *txt;
	size_t len;
	dm_status want_st;
	const char *want;	/* key=value words, checked with DM_OK */
	const char *err_has;	/* substring of err, or NULL */
} rows[] = {
	/* RFC 7489 Appendix B, strings concatenated as 6.1 says. */
	{ "7489 B.2.1", LIT("v=DMARC1; p=none; "
	      "rua=mailto:dmarc-feedback@example.com"), DM_OK,
	  "p=none sp=none np=none def=0 hp=1 hsp=0 hnp=0 pct=100 hpct=0 "
	  "rua=mailto:dmarc-feedback@example.com ruf=", NULL },
	{ "7489 B.2.2", LIT("v=DMARC1; p=none; "
	      "rua=mailto:dmarc-feedback@example.com; "
	      "ruf=mailto:auth-reports@example.com"), DM_OK,
	  "p=none rua=mailto:dmarc-feedback@example.com "
	  "ruf=mailto:auth-reports@example.com fo=0 rf=afrf", NULL },
	{ "7489 B.2.3", LIT("v=DMARC1; p=none; "
	      "rua=mailto:dmarc-feedback@example.com; "
	      "ruf=mailto:auth-reports@thirdparty.example.net"), DM_OK,
	  "p=none ruf=mailto:auth-reports@thirdparty.example.net", NULL },
	{ "7489 B.2.3 third-party record", LIT("v=DMARC1"), DM_NOTFOUND,
	  NULL, "no p=" },
	{ "7489 B.2.4", LIT("v=DMARC1; p=quarantine; "
	      "rua=mailto:dmarc-feedback@example.com,"
	      "mailto:tld-test@thirdparty.example.net!10m; pct=25"), DM_OK,
	  "p=quarantine sp=quarantine np=quarantine pct=25 hpct=1 "
	  "rua=mailto:dmarc-feedback@example.com,"
	  "mailto:tld-test@thirdparty.example.net!10485760", NULL },
	{ "7489 B.3.1", LIT("v=DMARC1; p=reject; aspf=r;\r\n "
	      "rua=mailto:dmarc-feedback@example.com"), DM_OK,
	  "p=reject aspf=r adkim=r rua=mailto:dmarc-feedback@example.com",
	  NULL },

	/* RFC 9989 Appendix B. */
	{ "9989 B.2.1", LIT("v=DMARC1; p=none; "
	      "rua=mailto:dmarc-feedback@example.com"), DM_OK,
	  "p=none t=n psd=u rua=mailto:dmarc-feedback@example.com", NULL },
	{ "9989 B.2.2", LIT("v=DMARC1; p=none; "
	      "rua=mailto:dmarc-feedback@example.com; "
	      "ruf=mailto:auth-reports@example.com"), DM_OK,
	  "p=none ruf=mailto:auth-reports@example.com", NULL },
	{ "9989 B.2.3", LIT("v=DMARC1; p=none; "
	      "rua=mailto:dmarc-feedback@example.com; "
	      "ruf=mailto:auth-reports@thirdparty.example.net"), DM_OK,
	  "p=none ruf=mailto:auth-reports@thirdparty.example.net", NULL },
	{ "9989 B.2.3 third-party record", LIT("v=DMARC1;"), DM_NOTFOUND,
	  NULL, "no valid rua=" },
	{ "9989 B.2.4 override record", LIT("v=DMARC1; "
	      "rua=mailto:aggregate-reports@thirdparty.example.net; "
	      "ruf=mailto:failure-reports@thirdparty.example.net"), DM_OK,
	  "p=none def=1 hp=0 "
	  "rua=mailto:aggregate-reports@thirdparty.example.net "
	  "ruf=mailto:failure-reports@thirdparty.example.net", NULL },
	{ "9989 B.2.5 testing", LIT("v=DMARC1; p=quarantine; "
	      "rua=mailto:dmarc-feedback@example.com,"
	      "mailto:tld-test@thirdparty.example.net; t=y"), DM_OK,
	  "p=quarantine t=y pct=100 hpct=0 "
	  "rua=mailto:dmarc-feedback@example.com,"
	  "mailto:tld-test@thirdparty.example.net", NULL },
	{ "9989 B.2.5 enforcing", LIT("v=DMARC1; p=reject; "
	      "rua=mailto:dmarc-feedback@example.com,"
	      "mailto:tld-test@thirdparty.example.net"), DM_OK,
	  "p=reject sp=reject np=reject t=n", NULL },
	{ "9989 B.3.1", LIT("v=DMARC1; p=reject; aspf=r; "
	      "rua=mailto:dmarc-feedback@example.com"), DM_OK,
	  "p=reject aspf=r", NULL },
	{ "9989 B.4.3 PSD record", LIT("v=DMARC1; p=reject; psd=y"), DM_OK,
	  "p=reject psd=y rua=", NULL },

	/* Every tag, and the defaults. */
	{ "all tags", LIT("v=DMARC1; p=reject; sp=quarantine; np=none; "
	      "pct=50; t=y; psd=n; adkim=s; aspf=s; fo=1:d:s; "
	      "rua=mailto:a@x.example; ruf=mailto:f@x.example!1k; "
	      "rf=afrf; ri=3600"), DM_OK,
	  "p=reject sp=quarantine np=none hp=1 hsp=1 hnp=1 def=0 pct=50 "
	  "hpct=1 t=y psd=n adkim=s aspf=s fo=1:d:s rua=mailto:a@x.example "
	  "ruf=mailto:f@x.example!1024 rf=afrf ri=3600", NULL },
	{ "defaults", LIT("v=DMARC1; p=reject"), DM_OK,
	  "p=reject sp=reject np=reject hsp=0 hnp=0 def=0 pct=100 hpct=0 "
	  "t=n psd=u adkim=r aspf=r fo=0 rf=afrf ri=86400 rua= ruf=", NULL },
	{ "np inherits sp", LIT("v=DMARC1; p=none; sp=reject"), DM_OK,
	  "p=none sp=reject np=reject hsp=1 hnp=0", NULL },
	{ "sp inherits p, np given", LIT("v=DMARC1; p=quarantine; np=reject"),
	  DM_OK, "sp=quarantine np=reject hsp=0 hnp=1", NULL },

	/* Case. */
	{ "upper-case tags and words", LIT("V=DMARC1; P=Reject; SP=QUARANTINE; "
	      "NP=None; ADKIM=S; ASPF=S; T=Y; PSD=Y; FO=D:S; RF=AFRF; "
	      "RUA=mailto:A@B.example"), DM_OK,
	  "p=reject sp=quarantine np=none adkim=s aspf=s t=y psd=y fo=d:s "
	  "rf=afrf rua=mailto:A@B.example", NULL },
	{ "version value is case-sensitive", LIT("v=dmarc1; p=reject"),
	  DM_NOTFOUND, NULL, "not a DMARC record" },

	/* Whitespace. */
	{ "whitespace everywhere", LIT("  v = DMARC1 ; p = reject ; "
	      "sp\t=\tnone ;"), DM_OK, "p=reject sp=none", NULL },
	{ "no whitespace", LIT("v=DMARC1;p=reject;" RUA_A), DM_OK,
	  "p=reject rua=mailto:a@x.example", NULL },
	{ "tabs and spaces in rua", LIT("v=DMARC1;\tp=quarantine\t;\t"
	      "rua = mailto:a@x.example , mailto:b@x.example!5m ;"), DM_OK,
	  "p=quarantine rua=mailto:a@x.example,mailto:b@x.example!5242880",
	  NULL },
	{ "empty tag-specs and trailing ;", LIT("v=DMARC1;; ;p=none;;;"),
	  DM_OK, "p=none", NULL },
	{ "folded with CRLF", LIT("v=DMARC1; p=reject;\r\n\t" RUA_A), DM_OK,
	  "p=reject rua=mailto:a@x.example", NULL },

	/* Not a DMARC record. */
	{ "v not first", LIT("p=reject; v=DMARC1"), DM_NOTFOUND, NULL,
	  "not a DMARC record" },
	{ "v=DMARC2", LIT("v=DMARC2; p=reject"), DM_NOTFOUND, NULL, NULL },
	{ "v=DMARC10", LIT("v=DMARC10; p=reject"), DM_NOTFOUND, NULL, NULL },
	{ "v=DMARC1 without ;", LIT("v=DMARC1 p=reject"), DM_NOTFOUND, NULL,
	  NULL },
	{ "empty record", LIT(""), DM_NOTFOUND, NULL, NULL },
	{ "v= alone", LIT("v="), DM_NOTFOUND, NULL, NULL },
	{ "SPF record", LIT("v=spf1 -all"), DM_NOTFOUND, NULL, NULL },
	{ "text before v", LIT("x v=DMARC1; p=reject"), DM_NOTFOUND, NULL,
	  NULL },
	{ "vv=DMARC1", LIT("vv=DMARC1; p=reject"), DM_NOTFOUND, NULL, NULL },

	/* Missing or invalid p, sp, np (RFC 9989 4.10.1). */
	{ "p missing, valid rua", LIT("v=DMARC1; " RUA_A), DM_OK,
	  "p=none sp=none np=none def=1 hp=0", "treated as p=none" },
	{ "p missing, sp given, valid rua",
	  LIT("v=DMARC1; sp=reject; " RUA_A), DM_OK,
	  "p=none sp=reject np=reject def=1 hp=0 hsp=1", NULL },
	{ "p missing, no rua", LIT("v=DMARC1; adkim=s"), DM_NOTFOUND, NULL,
	  "no p=" },
	{ "p invalid, valid rua", LIT("v=DMARC1; p=rejectt; " RUA_A), DM_OK,
	  "p=none sp=none def=1 hp=0", "invalid p=" },
	{ "p invalid, no rua", LIT("v=DMARC1; p=rejectt"), DM_NOTFOUND, NULL,
	  "invalid p=" },
	{ "p empty, valid rua", LIT("v=DMARC1; p=; " RUA_A), DM_OK,
	  "p=none def=1", NULL },
	{ "p invalid, rua has no valid URI",
	  LIT("v=DMARC1; p=bogus; rua=bogus,also bogus"), DM_NOTFOUND, NULL,
	  "no valid rua=" },
	{ "p invalid, only ruf", LIT("v=DMARC1; p=bogus; "
	      "ruf=mailto:f@x.example"), DM_NOTFOUND, NULL, NULL },
	{ "p valid, rua has no valid URI", LIT("v=DMARC1; p=reject; rua=bogus"),
	  DM_OK, "p=reject def=0 rua=", "invalid rua=" },
	{ "sp invalid, valid rua", LIT("v=DMARC1; p=reject; sp=bogus; " RUA_A),
	  DM_OK, "p=none sp=none np=none def=1 hp=1 hsp=0", "invalid sp=" },
	{ "sp invalid, no rua", LIT("v=DMARC1; p=reject; sp=bogus"),
	  DM_NOTFOUND, NULL, "invalid sp=" },
	{ "np invalid, valid rua", LIT("v=DMARC1; p=reject; np=bogus; " RUA_A),
	  DM_OK, "p=none sp=none np=none def=1 hnp=0", "invalid np=" },
	{ "np invalid, no rua", LIT("v=DMARC1; p=reject; np=bogus"),
	  DM_NOTFOUND, NULL, "invalid np=" },
	{ "np invalid, valid sp kept", LIT("v=DMARC1; p=reject; "
	      "sp=quarantine; np=maybe; " RUA_A), DM_OK,
	  "p=none sp=quarantine np=quarantine def=1", NULL },

	/* pct. */
	{ "pct=-1", LIT("v=DMARC1; p=reject; pct=-1"), DM_OK,
	  "pct=100 hpct=0", "invalid pct=" },
	{ "pct=0", LIT("v=DMARC1; p=reject; pct=0"), DM_OK, "pct=0 hpct=1",
	  NULL },
	{ "pct=50", LIT("v=DMARC1; p=reject; pct=50"), DM_OK, "pct=50 hpct=1",
	  NULL },
	{ "pct=100", LIT("v=DMARC1; p=reject; pct=100"), DM_OK,
	  "pct=100 hpct=1", NULL },
	{ "pct=101", LIT("v=DMARC1; p=reject; pct=101"), DM_OK,
	  "pct=100 hpct=0", NULL },
	{ "pct=abc", LIT("v=DMARC1; p=reject; pct=abc"), DM_OK,
	  "pct=100 hpct=0", NULL },
	{ "pct=050", LIT("v=DMARC1; p=reject; pct=050"), DM_OK,
	  "pct=50 hpct=1", NULL },
	{ "pct=0100 (4 digits)", LIT("v=DMARC1; p=reject; pct=0100"), DM_OK,
	  "pct=100 hpct=0", NULL },
	{ "pct=5.5", LIT("v=DMARC1; p=reject; pct=5.5"), DM_OK,
	  "pct=100 hpct=0", NULL },
	{ "pct empty", LIT("v=DMARC1; p=reject; pct="), DM_OK,
	  "pct=100 hpct=0", NULL },

	/* t, psd, adkim, aspf. */
	{ "t=n", LIT("v=DMARC1; p=reject; t=n"), DM_OK, "t=n", NULL },
	{ "t=x", LIT("v=DMARC1; p=reject; t=x"), DM_OK, "t=n", "invalid t=" },
	{ "t=yes", LIT("v=DMARC1; p=reject; t=yes"), DM_OK, "t=n", NULL },
	{ "psd=n", LIT("v=DMARC1; p=reject; psd=n"), DM_OK, "psd=n", NULL },
	{ "psd=u", LIT("v=DMARC1; p=reject; psd=u"), DM_OK, "psd=u", NULL },
	{ "psd=x", LIT("v=DMARC1; p=reject; psd=x"), DM_OK, "psd=u",
	  "invalid psd=" },
	{ "adkim=x aspf=relaxed", LIT("v=DMARC1; p=reject; adkim=x; "
	      "aspf=relaxed"), DM_OK, "adkim=r aspf=r", "invalid adkim=" },
	{ "adkim=r aspf=s", LIT("v=DMARC1; p=reject; adkim=r; aspf=s"), DM_OK,
	  "adkim=r aspf=s", NULL },

	/* fo. */
	{ "fo=1", LIT("v=DMARC1; p=none; fo=1"), DM_OK, "fo=1", NULL },
	{ "fo=d", LIT("v=DMARC1; p=none; fo=d"), DM_OK, "fo=d", NULL },
	{ "fo=0:d", LIT("v=DMARC1; p=none; fo=0:d"), DM_OK, "fo=0:d", NULL },
	{ "fo=d:s:1", LIT("v=DMARC1; p=none; fo=d:s:1"), DM_OK, "fo=d:s:1",
	  NULL },
	{ "fo with spaces", LIT("v=DMARC1; p=none; fo=s : d"), DM_OK,
	  "fo=s:d", NULL },
	{ "fo=0:1 (exclusive)", LIT("v=DMARC1; p=none; fo=0:1"), DM_OK,
	  "fo=0", "invalid fo=" },
	{ "fo=d:d (repeated)", LIT("v=DMARC1; p=none; fo=d:d"), DM_OK, "fo=0",
	  NULL },
	{ "fo=2", LIT("v=DMARC1; p=none; fo=2"), DM_OK, "fo=0", NULL },
	{ "fo=1: (empty item)", LIT("v=DMARC1; p=none; fo=1:"), DM_OK, "fo=0",
	  NULL },

	/* rf, ri. */
	{ "rf=afrf:iodef", LIT("v=DMARC1; p=none; rf=afrf:iodef"), DM_OK,
	  "rf=afrf:iodef", NULL },
	{ "rf with bad characters", LIT("v=DMARC1; p=none; rf=af!rf"), DM_OK,
	  "rf=afrf", "invalid rf=" },
	{ "rf too long", LIT("v=DMARC1; p=none; rf=afrf:iodef:another"),
	  DM_OK, "rf=afrf", NULL },
	{ "rf=-x", LIT("v=DMARC1; p=none; rf=-x"), DM_OK, "rf=afrf", NULL },
	{ "ri=0", LIT("v=DMARC1; p=none; ri=0"), DM_OK, "ri=0", NULL },
	{ "ri=4294967295", LIT("v=DMARC1; p=none; ri=4294967295"), DM_OK,
	  "ri=4294967295", NULL },
	{ "ri=4294967296", LIT("v=DMARC1; p=none; ri=4294967296"), DM_OK,
	  "ri=86400", "invalid ri=" },
	{ "ri=-5", LIT("v=DMARC1; p=none; ri=-5"), DM_OK, "ri=86400", NULL },
	{ "ri=1h", LIT("v=DMARC1; p=none; ri=1h"), DM_OK, "ri=86400", NULL },
	{ "ri with leading zeros",
	  LIT("v=DMARC1; p=none; ri=00000000000000000000003600"), DM_OK,
	  "ri=3600", NULL },

	/* rua, ruf. */
	{ "size suffixes", LIT("v=DMARC1; p=none; rua=mailto:a@x.example!10,"
	      "mailto:b@x.example!10k,mailto:c@x.example!1G; "
	      "ruf=mailto:d@x.example!2t"), DM_OK,
	  "rua=mailto:a@x.example!10,mailto:b@x.example!10240,"
	  "mailto:c@x.example!1073741824 ruf=mailto:d@x.example!2199023255552",
	  NULL },
	{ "invalid URIs skipped", LIT("v=DMARC1; p=none; "
	      "rua=mailto:a@x.example,notauri,mailto:b@x.example!10x,"
	      "https://r.example/dmarc"), DM_OK,
	  "rua=mailto:a@x.example,https://r.example/dmarc", NULL },
	{ "size overflow skipped", LIT("v=DMARC1; p=none; "
	      "rua=mailto:a@x.example!18446744073709551616,mailto:b@x.example"),
	  DM_OK, "rua=mailto:b@x.example", NULL },
	{ "8-bit URI skipped, others kept", LIT("v=DMARC1; p=none; "
	      "rua=mailto:\xc3\xa9@x.example,mailto:b@x.example"), DM_OK,
	  "rua=mailto:b@x.example", NULL },

	/* Unknown, malformed and duplicate tags. */
	{ "unknown tags", LIT("v=DMARC1; p=reject; foo=bar; x_y=1; "
	      "future=\xff"), DM_OK, "p=reject", "unknown tag foo= ignored" },
	{ "malformed tag name", LIT("v=DMARC1; p=reject; 1bad=x"), DM_OK,
	  "p=reject", "malformed" },
	{ "tag without =", LIT("v=DMARC1; p=reject; noequals"), DM_OK,
	  "p=reject", "malformed" },
	{ "duplicate p: first wins", LIT("v=DMARC1; p=reject; p=none"), DM_OK,
	  "p=reject", "duplicate p= ignored" },
	{ "duplicate p: an invalid first still wins",
	  LIT("v=DMARC1; p=bogus; p=reject; " RUA_A), DM_OK,
	  "p=none def=1", NULL },
	{ "duplicate v", LIT("v=DMARC1; p=none; v=DMARC2"), DM_OK, "p=none",
	  "duplicate v= ignored" },
	{ "duplicate rua", LIT("v=DMARC1; p=none; " RUA_A "; "
	      "rua=mailto:b@x.example"), DM_OK, "rua=mailto:a@x.example", NULL },
	{ "duplicate pct", LIT("v=DMARC1; p=reject; pct=10; pct=20"), DM_OK,
	  "pct=10", NULL },

	/* Bytes that are no text. */
	{ "8-bit value", LIT("v=DMARC1; p=reject; adkim=\xc3\xa9"), DM_OK,
	  "adkim=r", "invalid adkim=" },
	{ "control byte in p", LIT("v=DMARC1; p=re\x01ject; " RUA_A), DM_OK,
	  "p=none def=1", NULL },
	{ "NUL at the end", LIT("v=DMARC1; p=reject\0"), DM_PERMFAIL, NULL,
	  "NUL" },
	{ "NUL inside rua", LIT("v=DMARC1; p=none; "
	      "rua=mailto:a@x.example\0mailto:b"), DM_PERMFAIL, NULL, "NUL" },
	{ "NUL after DMARC1", LIT("v=DMARC1\0; p=reject"), DM_NOTFOUND, NULL,
	  NULL },
	{ "NUL first", LIT("\0v=DMARC1; p=reject"), DM_NOTFOUND, NULL, NULL },
};

static void
render_uris(const dm_urilist *l, char *buf, size_t len)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < l->n && o < len; i++) {
		if (l->v[i].max_size > 0)
			o += (size_t)snprintf(buf + o, len - o, "%s%s!%" PRIu64,
			    i > 0 ? "," : "", l->v[i].uri, l->v[i].max_size);
		else
			o += (size_t)snprintf(buf + o, len - o, "%s%s",
			    i > 0 ? "," : "", l->v[i].uri);
	}
}

static void
put(char *buf, size_t len, const char *s)
{
	snprintf(buf, len, "%s", s);
}

/* The field named key, as text; false for an unknown key. */
static int
render(const dm_record *r, const char *key, char *buf, size_t len)
{
	if (strcmp(key, "p") == 0)
		put(buf, len, dm_policy_str(r->p));
	else if (strcmp(key, "sp") == 0)
		put(buf, len, dm_policy_str(r->sp));
	else if (strcmp(key, "np") == 0)
		put(buf, len, dm_policy_str(r->np));
	else if (strcmp(key, "hp") == 0)
		snprintf(buf, len, "%d", r->has_p);
	else if (strcmp(key, "hsp") == 0)
		snprintf(buf, len, "%d", r->has_sp);
	else if (strcmp(key, "hnp") == 0)
		snprintf(buf, len, "%d", r->has_np);
	else if (strcmp(key, "def") == 0)
		snprintf(buf, len, "%d", r->p_defaulted);
	else if (strcmp(key, "pct") == 0)
		snprintf(buf, len, "%d", r->pct);
	else if (strcmp(key, "hpct") == 0)
		snprintf(buf, len, "%d", r->has_pct);
	else if (strcmp(key, "t") == 0)
		put(buf, len, r->testing ? "y" : "n");
	else if (strcmp(key, "psd") == 0)
		put(buf, len, dm_psd_str(r->psd));
	else if (strcmp(key, "adkim") == 0)
		put(buf, len, dm_align_mode_str(r->adkim));
	else if (strcmp(key, "aspf") == 0)
		put(buf, len, dm_align_mode_str(r->aspf));
	else if (strcmp(key, "fo") == 0)
		put(buf, len, r->fo);
	else if (strcmp(key, "rf") == 0)
		put(buf, len, r->rf);
	else if (strcmp(key, "ri") == 0)
		snprintf(buf, len, "%" PRIu32, r->ri);
	else if (strcmp(key, "rua") == 0)
		render_uris(&r->rua, buf, len);
	else if (strcmp(key, "ruf") == 0)
		render_uris(&r->ruf, buf, len);
	else
		return 0;
	return 1;
}

/* One check per "key=value" word of want. */
static void
check_fields(const char *name, const dm_record *r, const char *want)
{
	char words[1024], got[4096], *w, *next, *eq;

	put(words, sizeof(words), want);
	for (w = words; w != NULL && *w != '\0'; w = next) {
		if ((next = strchr(w, ' ')) != NULL)
			*next++ = '\0';
		if ((eq = strchr(w, '=')) == NULL)
			tap_bail("%s: bad want word %s", name, w);
		*eq = '\0';
		if (!render(r, w, got, sizeof(got)))
			tap_bail("%s: unknown key %s", name, w);
		tap_is_str(got, eq + 1, "%s: %s", name, w);
	}
}

static void
free_null(void)
{
	dm_record_free(NULL);
}

static void
test_rows(void)
{
	const struct row *w;
	dm_record *rec;
	dm_status st;
	char err[256], *txt;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		w = &rows[i];
		txt = tap_exact_copy(w->txt, w->len);
		st = dm_record_parse(txt, w->len, &rec, err, sizeof(err));
		free(txt);
		if (!tap_is_int(st, w->want_st, "%s: status", w->name))
			tap_diag("err: %s", err);
		if (st == DM_OK && w->want != NULL)
			check_fields(w->name, rec, w->want);
		if (st != DM_OK)
			tap_ok(rec == NULL, "%s: no record", w->name);
		if (w->err_has != NULL && !tap_ok(strstr(err, w->err_has) != NULL,
		    "%s: err mentions \"%s\"", w->name, w->err_has))
			tap_diag("err: %s", err);
		dm_record_free(rec);
	}
}

static const struct dmarc_row {
	const char *name;
	const char *txt;
	size_t len;
	int want;
} dmarc_rows[] = {
	{ "plain", LIT("v=DMARC1; p=none"), 1 },
	{ "bare v=DMARC1", LIT("v=DMARC1"), 1 },
	{ "v=DMARC1;", LIT("v=DMARC1;"), 1 },
	{ "leading whitespace", LIT(" \tv=DMARC1; p=none"), 1 },
	{ "spaces around =", LIT("v = DMARC1 ;"), 1 },
	{ "upper-case V", LIT("V=DMARC1"), 1 },
	{ "invalid p still claims DMARC", LIT("v=DMARC1; p=bogus"), 1 },
	{ "lower-case value", LIT("v=dmarc1"), 0 },
	{ "DMARC2", LIT("v=DMARC2"), 0 },
	{ "DMARC1x", LIT("v=DMARC1x"), 0 },
	{ "no ; after version", LIT("v=DMARC1 p=none"), 0 },
	{ "v not first", LIT("p=none; v=DMARC1"), 0 },
	{ "spf", LIT("v=spf1 -all"), 0 },
	{ "empty", LIT(""), 0 },
	{ "truncated", LIT("v=DMARC"), 0 },
	{ "NUL in version", LIT("v=DMA\0C1"), 0 },
};

static void
test_is_dmarc(void)
{
	const struct dmarc_row *r;
	char *txt;
	size_t i;

	for (i = 0; i < sizeof(dmarc_rows) / sizeof(dmarc_rows[0]); i++) {
		r = &dmarc_rows[i];
		txt = tap_exact_copy(r->txt, r->len);
		tap_is_int(dm_record_is_dmarc(txt, r->len), r->want,
		    "is_dmarc %s", r->name);
		free(txt);
	}
	tap_is_int(dm_record_is_dmarc(NULL, 0), 0, "is_dmarc NULL");
	/* The length bounds the check, not the terminator. */
	tap_is_int(dm_record_is_dmarc("v=DMARC1", 7), 0,
	    "is_dmarc stops at len");
}

/* A record of 64 KB: a long unknown tag, then rua with 1500 URIs. */
static void
test_big(void)
{
	const size_t cap = 65536;
	char *buf, err[256];
	size_t len, i;
	dm_record *rec;
	dm_status st;

	if ((buf = malloc(cap)) == NULL)
		tap_bail("out of memory");
	len = (size_t)snprintf(buf, cap, "v=DMARC1; p=quarantine; x=");
	memset(buf + len, 'a', 20000);
	len += 20000;
	len += (size_t)snprintf(buf + len, cap - len, "; rua=");
	for (i = 0; i < 1500 && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len,
		    "%smailto:r%zu@x.example", i > 0 ? "," : "", i);
	if (len >= cap)
		tap_bail("64 KB record does not fit");
	while (len < cap)
		buf[len++] = ' ';
	st = dm_record_parse(buf, len, &rec, err, sizeof(err));
	tap_is_int((long)len, 65536, "64 KB record: length");
	tap_is_int(st, DM_OK, "64 KB record: status");
	if (st == DM_OK) {
		tap_is_str(dm_policy_str(rec->p), "quarantine",
		    "64 KB record: p");
		tap_is_int((long)rec->rua.n, 1500, "64 KB record: 1500 URIs");
		tap_is_str(rec->rua.v[rec->rua.n - 1].uri,
		    "mailto:r1499@x.example", "64 KB record: last URI");
	} else
		tap_skip(3, "not parsed");
	dm_record_free(rec);
	free(buf);
}

static void
test_edges(void)
{
	static const char rec_txt[] = "v=DMARC1; p=reject; foo=bar; baz=1";
	char *big, err[8];
	size_t biglen = 1024 * 1024 + 1;
	dm_record *rec;
	dm_status st;

	if ((big = malloc(biglen)) == NULL)
		tap_bail("out of memory");
	memcpy(big, "v=DMARC1; p=none;", 17);
	memset(big + 17, ' ', biglen - 17);
	tap_is_int(dm_record_parse(big, biglen, &rec, NULL, 0), DM_PERMFAIL,
	    "record over 1 MiB: permfail");
	free(big);
	tap_is_int(dm_record_parse(NULL, 0, &rec, NULL, 0), DM_NOTFOUND,
	    "NULL record: not found");
	st = dm_record_parse(rec_txt, sizeof(rec_txt) - 1, &rec, NULL, 0);
	tap_is_int(st, DM_OK, "no err buffer: still parses");
	dm_record_free(rec);
	st = dm_record_parse(rec_txt, sizeof(rec_txt) - 1, &rec, err,
	    sizeof(err));
	tap_ok(st == DM_OK && strlen(err) < sizeof(err),
	    "short err buffer: truncated note, got \"%s\"", err);
	dm_record_free(rec);
	/* A prefix of a longer string: the rest must not be seen. */
	st = dm_record_parse("v=DMARC1; p=reject; p=none", 19, &rec, NULL, 0);
	tap_ok(st == DM_OK && rec->p == DM_POLICY_REJECT,
	    "len bounds the parse: p=reject");
	dm_record_free(rec);
	tap_in_child(free_null, "dm_record_free(NULL) is harmless");
}

static void
test_strings(void)
{
	tap_is_str(dm_policy_str(DM_POLICY_NONE), "none", "policy none");
	tap_is_str(dm_policy_str(DM_POLICY_QUARANTINE), "quarantine",
	    "policy quarantine");
	tap_is_str(dm_policy_str(DM_POLICY_REJECT), "reject", "policy reject");
	tap_is_str(dm_policy_str((dm_policy)42), "none",
	    "policy out of range");
	tap_is_str(dm_align_mode_str(DM_ALIGN_RELAXED), "r", "align relaxed");
	tap_is_str(dm_align_mode_str(DM_ALIGN_STRICT), "s", "align strict");
	tap_is_str(dm_psd_str(DM_PSD_UNSET), "u", "psd unset");
	tap_is_str(dm_psd_str(DM_PSD_YES), "y", "psd yes");
	tap_is_str(dm_psd_str(DM_PSD_NO), "n", "psd no");
	tap_is_str(dm_psd_str((dm_psd)42), "u", "psd out of range");
}

int
main(void)
{
	test_rows();
	test_is_dmarc();
	test_big();
	test_edges();
	test_strings();
	return tap_done();
}
