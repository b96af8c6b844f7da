/*
 * tests/fuzz/fuzz_journal.c - libFuzzer target: a journal segment
 * (dm_journal.h) read by dm_journal_read. A journal is our own file, but
 * after a crash, a full disk or a hand edit its tail is anything, and the
 * replay must skip what is bad and keep going.
 *
 * The first byte chooses how the rest is used. Bit 0 clear: the bytes
 * are the file. Bit 0 set: every line of the rest is a payload, and the
 * target writes it framed with its true CRC and length, so that the
 * fuzzer reaches the field decoder behind the checksum. Bit 1: the
 * callback asks to stop after the first record.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "dm_journal.h"
#include "fuzz.h"

struct seen {
	size_t records;
	int stop;
};

static int
on_record(const dm_update *u, void *arg)
{
	struct seen *s = arg;

	/* dm_update.h's alphabet, whole: a writer id names files and keys */
	if (memchr(u->writer, '\0', sizeof(u->writer)) == NULL ||
	    u->writer[0] == '\0' || u->writer[strspn(u->writer,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	    "._:-")] != '\0')
		fuzz_fail("bad writer passed on");
	if (u->seq == 0 || u->domain == NULL || u->domain[0] == '\0' ||
	    u->policy == NULL || u->row == NULL)
		fuzz_fail("an update without seq, domain, policy or row");
	(void)strlen(u->policy);
	(void)strlen(u->row);
	s->records++;
	return s->stop;
}

/*
 * Each '\n'-terminated (or final) line of in, framed as a record: at
 * most n + 1 lines, each growing by at most 31 bytes of header and '\n'.
 */
static char *
frame(const uint8_t *in, size_t n, size_t *outlen)
{
	char *out = malloc(32 * (n + 1)), *o = out;
	const uint8_t *nl, *end = in + n;
	size_t len;

	if (out == NULL)
		fuzz_fail("out of memory");
	while (in < end) {
		if ((nl = memchr(in, '\n', (size_t)(end - in))) == NULL)
			nl = end;
		len = (size_t)(nl - in);
		o += sprintf(o, "%08lx %zu ", (unsigned long)crc32_z(0, in,
		    len), len);
		memcpy(o, in, len);
		o += len;
		*o++ = '\n';
		in = nl + (nl < end);
	}
	*outlen = (size_t)(o - out);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = { 0, 0 };
	char path[64], *framed = NULL;
	size_t bad = 0, len = size > 0 ? size - 1 : 0;
	const void *file = data + (size > 0);
	int fd, rc;

	fuzz_quiet_log();
	if (size > 0 && (data[0] & 1)) {
		framed = frame(data + 1, len, &len);
		file = framed;
	}
	s.stop = size > 0 && (data[0] & 2);
	rc = dm_journal_parse("fuzz", file, len, on_record, &s, &bad);
	if (rc != 0 && rc != s.stop)
		fuzz_fail("dm_journal_parse returned %d", rc);
	if (s.stop && rc == 1 && s.records != 1)
		fuzz_fail("did not stop after the first record");
	/* and once through the file reader, which must agree */
	if (!s.stop) {
		size_t bad2 = 0, records = s.records;

		s.records = 0;
		if ((fd = fuzz_memfile(file, len, path, sizeof(path))) < 0)
			fuzz_fail("memfd: cannot write the input");
		if (dm_journal_read(path, on_record, &s, &bad2) != 0 ||
		    bad2 != bad || s.records != records)
			fuzz_fail("dm_journal_read disagrees with the parser");
		close(fd);
	}
	free(framed);
	return 0;
}
