/*
 * lib/domain.c - one normal form for every domain the project compares:
 * lower case, no trailing dot, A-labels. Author domains, DKIM d=, SPF
 * identities and DNS names then compare byte for byte; a U-label that
 * reached us in an RFC 6532 From field compares with its A-label.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "dm_domain.h"
#include "dm_log.h"

static bool
domain_ldh(unsigned char c)
{
	/* Underscore: DKIM selectors' and SPF's names use it in the wild. */
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	    c == '_';
}

/* Lower-cased ASCII: labels 1..63, total <= 253, LDH (and '_'). */
static dm_status
domain_check_ascii(const char *in, size_t len, char *out, size_t outlen)
{
	size_t i, label = 0;

	if (len == 0 || len > 253 || len + 1 > outlen)
		return DM_PERMFAIL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		if (c == '.') {
			if (label == 0)
				return DM_PERMFAIL;
			label = 0;
		} else if (!domain_ldh(c) || ++label > 63)
			return DM_PERMFAIL;
		out[i] = (char)c;
	}
	if (label == 0)
		return DM_PERMFAIL;
	out[len] = '\0';
	return DM_OK;
}

/* U-labels to A-labels with IDNA2008 (non-transitional, NFC input). */
static dm_status
domain_to_ascii(const char *in, size_t len, char *out, size_t outlen)
{
	char *u, *a = NULL;
	dm_status st;

	if ((u = strndup(in, len)) == NULL)
		dm_log_oom();
	if (idn2_to_ascii_8z(u, &a, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) !=
	    IDN2_OK) {
		free(u);
		return DM_PERMFAIL;
	}
	st = domain_check_ascii(a, strlen(a), out, outlen);
	idn2_free(a);
	free(u);
	return st;
}

dm_status
dm_domain_normalize(const char *in, size_t len, char *out, size_t outlen)
{
	size_t i;
	bool eight_bit = false;

	if (outlen > 0)
		*out = '\0';
	if (len > 0 && in[len - 1] == '.')
		len--;
	for (i = 0; i < len; i++) {
		if (in[i] == '\0')
			return DM_PERMFAIL;
		if ((unsigned char)in[i] >= 0x80)
			eight_bit = true;
	}
	if (len > 1024)
		return DM_PERMFAIL;
	if (eight_bit)
		return domain_to_ascii(in, len, out, outlen);
	return domain_check_ascii(in, len, out, outlen);
}
