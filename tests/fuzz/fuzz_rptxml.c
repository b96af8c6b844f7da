/*
 * tests/fuzz/fuzz_rptxml.c - libFuzzer target: the report XML writer,
 * rows in, XML out. The input is in the format of the golden files of
 * tests/unit/test_rptxml.c (tests/fixtures/reports/NAME.in): "key value"
 * meta lines and "count<TAB>row text" lines; a missing meta field gets a
 * plain default. Row and policy texts come from Redis, where anything
 * with access to it could have written them, and they carry selectors,
 * comments and domains taken from messages.
 *
 * Each input is written in both formats. A document written must parse
 * (libxml2, no recovery), hold as many records and messages as the
 * writer says, and validate against its schema, as rptxml.h promises.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzzxml.h"

#define MAX_ROWS 256

struct input {
	rpt_meta m;
	rpt_row rows[MAX_ROWS];
	size_t n;
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	fuzz_xml_init();
	return 0;
}

static void
meta_line(rpt_meta *m, const char *key, const char *v)
{
	if (strcmp(key, "org_name") == 0)
		m->org_name = v;
	else if (strcmp(key, "email") == 0)
		m->email = v;
	else if (strcmp(key, "extra_contact_info") == 0)
		m->extra_contact = v;
	else if (strcmp(key, "report_id") == 0)
		m->report_id = v;
	else if (strcmp(key, "generator") == 0)
		m->generator = v;
	else if (strcmp(key, "begin") == 0)
		m->begin = strtoll(v, NULL, 10);
	else if (strcmp(key, "end") == 0)
		m->end = strtoll(v, NULL, 10);
	else if (strcmp(key, "domain") == 0)
		m->domain = v;
	else if (strcmp(key, "policy") == 0)
		m->policy = v;
}

/* Cuts buf (a C string) into lines and fills in; strings point into buf. */
static void
read_input(char *buf, struct input *in)
{
	char *line, *save = NULL, *sp;

	memset(in, 0, sizeof(*in));
	in->m = (rpt_meta){ "Fuzz", "dmarc@fuzz.example", NULL, "fuzz.1",
	    NULL, 1704067200, 1704153600, "fuzz.example", "p=none;",
	    RPT_RFC7489 };
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((sp = strchr(line, '\t')) != NULL && sp > line &&
		    line[0] >= '0' && line[0] <= '9' && in->n < MAX_ROWS) {
			*sp = '\0';
			in->rows[in->n].count = strtoull(line, NULL, 10);
			in->rows[in->n++].row = sp + 1;
		} else if ((sp = strchr(line, ' ')) != NULL) {
			*sp = '\0';
			meta_line(&in->m, line, sp + 1);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct input in;
	char *buf = fuzz_cstr(data, size);

	fuzz_xml_init();
	read_input(buf, &in);
	fuzz_xml_report(&in.m, in.rows, in.n);
	free(buf);
	return 0;
}
