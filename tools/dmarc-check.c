/*
 * tools/dmarc-check.c - evaluates one message from the command line
 * exactly as the milter does (same engine, same configuration), and
 * prints the Authentication-Results header it would add, or with --json
 * one JSON object with the whole verdict.
 *
 * Exit status: 0 for any verdict; 2 for bad usage, unreadable input or a
 * configuration that cannot be used.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dm_authres.h"
#include "dm_engine.h"
#include "dm_msgstream.h"
#include "dm_log.h"

struct check_args {
	const char *ip, *helo, *mail_from, *dns_config, *config, *file;
	bool json;
	bool fixed_random;
	uint32_t random;
};

static void
usage(FILE *fp)
{
	fputs("usage: dmarc-check --ip ADDR [--helo NAME] [--mail-from ADDR]"
	    " [--dns-config FILE]\n"
	    "                   [-c CONFIG] [--json] [--random N] "
	    "[MESSAGE|-]\n", fp);
}

static int
fail(const char *what, const char *why)
{
	fprintf(stderr, "dmarc-check: %s%s%s\n", what, why ? ": " : "",
	    why ? why : "");
	return 2;
}

static bool
parse_random(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n > UINT32_MAX ||
	    *s == '-')
		return false;
	*out = (uint32_t)n;
	return true;
}

/* 0: parsed; 1: --help; 2: bad usage (message printed). */
static int
parse_args(int argc, char **argv, struct check_args *a)
{
	static const struct option opts[] = {
		{ "ip", required_argument, NULL, 'i' },
		{ "helo", required_argument, NULL, 'H' },
		{ "mail-from", required_argument, NULL, 'f' },
		{ "dns-config", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "random", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char shortopt[3] = "-?";
	int c;

	opterr = 0;	/* one line of our own instead of getopt's two */
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': a->ip = optarg; break;
		case 'H': a->helo = optarg; break;
		case 'f': a->mail_from = optarg; break;
		case 'd': a->dns_config = optarg; break;
		case 'c': a->config = optarg; break;
		case 'j': a->json = true; break;
		case 'r':
			if (!parse_random(optarg, &a->random))
				return fail("--random takes 0..4294967295",
				    optarg);
			a->fixed_random = true;
			break;
		case 'h': usage(stdout); return 1;
		case ':':
			return fail("option needs a value (see --help)",
			    argv[optind - 1]);
		default:
			/* optopt names a short option; a long one is in argv */
			shortopt[1] = (char)optopt;
			return fail("unknown option (see --help)",
			    optopt ? shortopt : argv[optind - 1]);
		}
	}
	if (a->ip == NULL)
		return fail("--ip is required", NULL);
	if (optind < argc - 1)
		return fail("one message at a time", argv[optind + 1]);
	a->file = optind < argc ? argv[optind] : "-";
	return 0;
}

static json_t *
json_str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? json_string(s) : json_null();
}

static json_t *
json_policy(const dm_record *r)
{
	if (r == NULL)
		return json_null();
	return json_pack("{s:s, s:s, s:s, s:i, s:b, s:s, s:s}",
	    "p", dm_policy_str(r->p), "sp", dm_policy_str(r->sp),
	    "np", dm_policy_str(r->np), "pct", r->pct, "t", r->testing,
	    "adkim", dm_align_mode_str(r->adkim),
	    "aspf", dm_align_mode_str(r->aspf));
}

static json_t *
json_dkim(const dm_verdict *v, const dm_author *a)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < v->nsigs; i++)
		json_array_append_new(arr, json_pack(
		    "{s:o, s:o, s:s, s:b, s:o, s:o}",
		    "domain", json_str_or_null(v->sigs[i]->domain),
		    "selector", json_str_or_null(v->sigs[i]->selector),
		    "result", dm_dkim_result_str(v->sigs[i]->result),
		    "aligned", a != NULL && a->dkim_aligned != NULL &&
		    a->dkim_aligned[i],
		    "algorithm", json_str_or_null(v->sigs[i]->algorithm),
		    "error", json_str_or_null(v->sigs[i]->error)));
	return arr;
}

static json_t *
json_reasons(const dm_author *a)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; a != NULL && i < a->pv.nreasons; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s}", "type",
		    dm_reason_type_str(a->pv.reasons[i].type), "comment",
		    a->pv.reasons[i].comment));
	return arr;
}

static json_t *
json_authors(const dm_verdict *v)
{
	json_t *arr = json_array();
	const dm_author *a;
	size_t i;

	for (i = 0; i < v->nauthors; i++) {
		a = &v->authors[i];
		json_array_append_new(arr, json_pack(
		    "{s:s, s:o, s:s, s:s, s:o, s:o}",
		    "domain", a->domain,
		    "policy_domain", json_str_or_null(a->disc.policy_domain),
		    "dmarc", dm_dmarc_result_str(a->pv.result),
		    "disposition", dm_disposition_str(a->pv.disposition),
		    "policy_tag", a->disc.record != NULL ?
		    json_string(dm_policy_tag_str(a->pv.tag)) : json_null(),
		    "reasons", json_reasons(a)));
	}
	return arr;
}

static json_t *
json_verdict(const dm_verdict *v)
{
	const dm_author *a = v->nauthors > 0 ? &v->authors[v->decisive] :
	    NULL;
	json_t *errors = json_array();
	size_t i;

	for (i = 0; i < v->nerrors; i++)
		json_array_append_new(errors, json_string(v->errors[i]));
	return json_pack("{s:o, s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:{s:s, "
	    "s:o, s:s, s:b}, s:o, s:o, s:o, s:o}",
	    "header_from", json_str_or_null(a ? a->domain : NULL),
	    "policy_domain", json_str_or_null(a ? a->disc.policy_domain :
	    NULL),
	    "dmarc", dm_dmarc_result_str(v->result),
	    "disposition", dm_disposition_str(v->disposition),
	    "from_state", dm_from_state_str(v->from_state),
	    "from_fault", dm_from_fault_str(v->from_fault),
	    "from_why", json_str_or_null(v->from_why),
	    "policy", json_policy(a ? a->disc.record : NULL),
	    "spf", "result", dm_spf_result_str(v->spf.result),
	    "domain", json_str_or_null(v->spf.domain),
	    "scope", dm_spf_scope_str(v->spf.scope),
	    "aligned", a != NULL && a->spf_aligned,
	    "dkim", json_dkim(v, a),
	    "reasons", json_reasons(a),
	    "authors", json_authors(v),
	    "errors", errors);
}

static int
print_verdict(const dm_verdict *v, const struct check_args *a,
    const dm_config *cfg)
{
	char *ar;
	json_t *j;

	if (a->json) {
		if ((j = json_verdict(v)) == NULL)
			return fail("cannot build JSON", NULL);
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(j);
		return 0;
	}
	ar = dm_authres_format(v, dm_config_str(cfg, DM_OPT_AUTHSERV_ID), "\n",
	    NULL);
	printf("Authentication-Results:%s\n", ar);
	free(ar);
	return 0;
}

static uint32_t
fixed_random(void *arg)
{
	return *(const uint32_t *)arg;
}

static int
evaluate(dm_engine *e, struct check_args *a, int fd)
{
	char err[256];
	const dm_verdict *v;
	dm_msg *m = NULL;
	int rc = 2;

	if ((m = dm_msg_new(e, NULL)) == NULL)
		dm_log_oom();
	if (a->fixed_random)
		dm_engine_set_random(e, fixed_random, &a->random);
	if (dm_msg_client(m, a->ip, a->helo) != DM_OK ||
	    dm_msg_mail_from(m, a->mail_from) != DM_OK)
		dm_log_oom();
	if (dm_msg_feed_stream(m, fd, err, sizeof(err)) != DM_OK) {
		rc = fail(a->file, err);
		goto done;
	}
	if (dm_msg_eom(m, &v) != DM_OK)
		dm_log_oom();
	rc = print_verdict(v, a, dm_engine_config(e));
done:
	dm_msg_free(m);
	return rc;
}

int
main(int argc, char **argv)
{
	struct check_args a = { 0 };
	dm_config *cfg = NULL;
	dm_engine *e = NULL;
	char err[512] = "";
	int rc, fd = STDIN_FILENO;

	dm_log_open("dmarc-check", NULL, DM_LOG_TO_STDERR);
	dm_log_set_level(DM_LOG_WARNING);
	if ((rc = parse_args(argc, argv, &a)) != 0)
		return rc == 1 ? 0 : rc;
	if (dm_config_load(a.config, &cfg, err, sizeof(err)) != DM_OK)
		return fail(err, NULL);
	if (a.dns_config != NULL && dm_config_set(cfg, "DNSConfig",
	    a.dns_config, err, sizeof(err)) != DM_OK) {
		rc = fail(err, NULL);
		goto done;
	}
	if (strcmp(a.file, "-") != 0 && (fd = open(a.file, O_RDONLY)) < 0) {
		rc = fail(a.file, strerror(errno));
		goto done;
	}
	if ((e = dm_engine_new(cfg, err, sizeof(err))) == NULL) {
		rc = fail(err, NULL);
		goto done;
	}
	rc = evaluate(e, &a, fd);
done:
	if (fd != STDIN_FILENO && fd >= 0)
		close(fd);
	dm_engine_free(e);
	dm_config_unref(cfg);
	return rc;
}
