/*
 * tests/fuzz/fuzzxml.h - the check every report document written under
 * fuzzing goes through (fuzz_rptxml, fuzz_engine): well-formed, counts
 * as the writer says, valid against its schema.
 */
#ifndef FUZZXML_H
#define FUZZXML_H

#include <stddef.h>

#include "rptxml.h"

/* Loads both schemas (once); fuzz_fail when they cannot be read. */
void fuzz_xml_init(void);

/* xml as rpt_xml_write gave it, with its stats; fuzz_fail on a fault. */
void fuzz_xml_check(const char *xml, size_t len, const rpt_stats *st,
    enum rpt_format f);

/*
 * Writes m (in both formats) over rows and checks each document. A
 * report the writer refuses (an unreadable text) is no finding.
 */
void fuzz_xml_report(rpt_meta *m, const rpt_row *rows, size_t n);

#endif
