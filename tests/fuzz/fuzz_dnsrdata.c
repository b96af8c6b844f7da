/*
 * tests/fuzz/fuzz_dnsrdata.c - libFuzzer target: the bytes of a DNS
 * answer that our code reads itself, whoever runs the sender's DNS
 * server: TXT RDATA joined by dm_txt_join (every DMARC, SPF and report
 * authorization record passes there) and MX/PTR RDATA names turned to
 * text by dm_spf_wire_name (what the SPF evaluator then looks up).
 *
 * Input: the whole input is tried as each kind. A joined TXT must be the
 * character-strings' bytes in order and no longer than the RDATA; a name
 * must be dot-separated labels of 1..63 printable bytes without '.' or
 * '\', and written back to wire form it must be the bytes it came from.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dm_resolver.h"
#include "dm_spf.h"
#include "fuzz.h"

static void
check_txt(const uint8_t *data, size_t size)
{
	dm_txt t;
	size_t i, o = 0, seg;

	if (dm_txt_join(data, size, &t) != 0)
		return;
	if (t.len >= size || t.data[t.len] != '\0')
		fuzz_fail("txt: %zu bytes from %zu of RDATA", t.len, size);
	for (i = 0; i < size; i += 1 + seg) {
		seg = data[i];
		if (o + seg > t.len ||
		    memcmp(t.data + o, data + i + 1, seg) != 0)
			fuzz_fail("txt: segment at %zu not joined in order", i);
		o += seg;
	}
	if (o != t.len)
		fuzz_fail("txt: %zu bytes joined, %zu expected", t.len, o);
	free(t.data);
}

/* The name back in wire form, compared with the RDATA it came from. */
static void
check_name_back(const char *name, const uint8_t *data, size_t size)
{
	const char *p = name, *dot;
	size_t i = 0, lab;

	for (;;) {
		dot = strchr(p, '.');
		lab = dot ? (size_t)(dot - p) : strlen(p);
		if (lab == 0 || lab > 63 || i + 1 + lab > size ||
		    data[i] != lab || memcmp(data + i + 1, p, lab) != 0)
			fuzz_fail("name: '%s' is not the RDATA's labels", name);
		i += 1 + lab;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (i >= size || data[i] != 0)
		fuzz_fail("name: '%s' did not end at the root label", name);
}

static void
check_name(const uint8_t *data, size_t size, size_t outlen)
{
	char name[256];
	const char *c;

	if (dm_spf_wire_name(data, size, name, outlen) != 0)
		return;
	if (strlen(name) >= outlen)
		fuzz_fail("name: %zu bytes in a buffer of %zu", strlen(name),
		    outlen);
	for (c = name; *c != '\0'; c++)
		if (*c <= ' ' || *c >= 0x7f || *c == '\\')
			fuzz_fail("name: byte 0x%02x in '%s'",
			    (unsigned char)*c, name);
	check_name_back(name, data, size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet_log();
	check_txt(data, size);
	check_name(data, size, 256);			/* PTR */
	if (size > 2)
		check_name(data + 2, size - 2, 256);	/* MX: after its preference */
	/* a small buffer: the bound must hold at every length */
	check_name(data, size, 1 + (size > 0 ? data[0] % 64 : 0));
	return 0;
}
