/*
 * tests/fuzz/fuzz.h - what every libFuzzer target of tests/fuzz/ shares:
 * the entry points libFuzzer (or regress_main.c, in a normal build)
 * calls, and small helpers to hand fuzz bytes to APIs that want a C
 * string or a file.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional; regress_main.c calls it when a target defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * Logging formatted at every level (so the arguments of each log line
 * are exercised) and written nowhere.
 */
void fuzz_quiet_log(void);

/* A malloc'ed copy with a NUL after size bytes; exits on no memory. */
char *fuzz_cstr(const uint8_t *data, size_t size);

/*
 * An anonymous file (memfd) holding exactly these bytes, offset 0, and
 * its name under /proc/self/fd in path. -1 on failure (errno set).
 */
int fuzz_memfile(const void *data, size_t size, char *path, size_t pathlen);

/*
 * A normalised domain (dm_domain_normalize): 1..253 bytes of lower-case
 * LDH labels (and '_') of 1..63 bytes; fuzz_fail otherwise, naming what.
 */
void fuzz_check_domain(const char *what, const char *d);

/*
 * A header field body we write (Authentication-Results): no control
 * bytes, line breaks only as "CRLF TAB" folds, so it stays one field.
 */
void fuzz_check_field(const char *f);

/* An SMTP reply text: printable ASCII without '%' (libmilter formats). */
struct dm_action;
void fuzz_check_reply(const struct dm_action *a);

/* abort() with a message on stderr: a finding, not a test failure. */
void fuzz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
