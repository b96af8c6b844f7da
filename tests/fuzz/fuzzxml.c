/*
 * tests/fuzz/fuzzxml.c - checks a report document written under fuzzing
 * (fuzzxml.h). The schemas are the ones test_rptxml validates against,
 * found at FUZZ_XSD_DIR (set by tests/fuzz/fuzz.am to the source tree).
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include "fuzz.h"
#include "fuzzxml.h"

#ifndef FUZZ_XSD_DIR
#define FUZZ_XSD_DIR "tests/fixtures/reports"
#endif

static const char *const xsd_files[] = {
	"rfc7489-appendix-c-fixed-nons.xsd", "dmarc-2.0-draft32.xsd",
};
static xmlSchemaPtr schemas[2];

static void __attribute__((format(printf, 2, 3)))
quiet(void *ctx, const char *fmt, ...)
{
	(void)ctx;
	(void)fmt;
}

/* For the report of a finding: why the schema says no. */
static void __attribute__((format(printf, 2, 3)))
loud(void *ctx, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static xmlSchemaPtr
load_schema(const char *name)
{
	char path[4096];
	xmlSchemaParserCtxtPtr pc;
	xmlSchemaPtr s;

	snprintf(path, sizeof(path), "%s/%s", FUZZ_XSD_DIR, name);
	if ((pc = xmlSchemaNewParserCtxt(path)) == NULL)
		fuzz_fail("%s: cannot read the schema", path);
	if ((s = xmlSchemaParse(pc)) == NULL)
		fuzz_fail("%s: cannot parse the schema", path);
	xmlSchemaFreeParserCtxt(pc);
	return s;
}

void
fuzz_xml_init(void)
{
	if (schemas[0] != NULL)
		return;
	xmlInitParser();
	xmlSetGenericErrorFunc(NULL, quiet);
	schemas[0] = load_schema(xsd_files[0]);
	schemas[1] = load_schema(xsd_files[1]);
}

/* <record> elements and the sum of their <count>s, anywhere below n. */
static void
tally(xmlNode *n, size_t *records, uint64_t *messages)
{
	xmlChar *t;

	for (; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (xmlStrcmp(n->name, BAD_CAST "record") == 0)
			(*records)++;
		if (xmlStrcmp(n->name, BAD_CAST "count") == 0) {
			t = xmlNodeGetContent(n);
			*messages += strtoull((const char *)t, NULL, 10);
			xmlFree(t);
		}
		tally(n->children, records, messages);
	}
}

static void
check_valid(xmlDoc *d, const char *xml, int f)
{
	xmlSchemaValidCtxtPtr vc;

	if ((vc = xmlSchemaNewValidCtxt(schemas[f])) == NULL)
		fuzz_fail("out of memory");
	xmlSchemaSetValidErrors(vc, quiet, quiet, NULL);
	if (xmlSchemaValidateDoc(vc, d) != 0) {
		xmlSchemaSetValidErrors(vc, loud, loud, NULL);
		(void)xmlSchemaValidateDoc(vc, d);
		fuzz_fail("not valid against %s:\n%s", xsd_files[f], xml);
	}
	xmlSchemaFreeValidCtxt(vc);
}

void
fuzz_xml_check(const char *xml, size_t len, const rpt_stats *st,
    enum rpt_format f)
{
	size_t records = 0;
	uint64_t messages = 0;
	xmlDoc *d;

	fuzz_xml_init();
	if (xml == NULL || strlen(xml) != len)
		fuzz_fail("document of %zu bytes with a NUL", len);
	d = xmlReadMemory(xml, (int)len, "report.xml", NULL, XML_PARSE_NONET |
	    XML_PARSE_HUGE | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (d == NULL)
		fuzz_fail("not well-formed XML:\n%s", xml);
	tally(xmlDocGetRootElement(d), &records, &messages);
	if (records != st->records || messages != st->messages)
		fuzz_fail("%zu records, %" PRIu64 " messages; the writer said "
		    "%zu, %" PRIu64 ":\n%s", records, messages, st->records,
		    st->messages, xml);
	check_valid(d, xml, f == RPT_RFC9990);
	xmlFreeDoc(d);
}

void
fuzz_xml_report(rpt_meta *m, const rpt_row *rows, size_t n)
{
	char *xml, err[256];
	rpt_stats st;
	size_t len;
	int f;

	for (f = 0; f < 2; f++) {
		m->format = f == 0 ? RPT_RFC7489 : RPT_RFC9990;
		if (rpt_xml_write(m, rows, n, &xml, &len, &st, err,
		    sizeof(err)) != 0)
			continue;
		fuzz_xml_check(xml, len, &st, m->format);
		free(xml);
	}
}
