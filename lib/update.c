/*
 * lib/update.c - the update record every store backend handles: deep
 * copy and release of its strings, and the short id of a policy text
 * (FNV-1a 64) that names a group in the stores; the message fingerprint
 * (SHA-256 over what a retried message repeats) that lets the stores
 * count a message once however often its reply was lost.
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dm_log.h"
#include "dm_update.h"

#define FNV64_OFFSET	UINT64_C(0xcbf29ce484222325)
#define FNV64_PRIME	UINT64_C(0x100000001b3)

/* NULL stays NULL; false only when out of memory. */
static char *
update_strdup(const char *src)
{
	char *p;

	if (src == NULL)
		return NULL;
	if ((p = strdup(src)) == NULL)
		dm_log_oom();
	return p;
}

void
dm_update_copy(dm_update *dst, const dm_update *src)
{
	*dst = *src;
	dst->domain = update_strdup(src->domain);
	dst->policy = update_strdup(src->policy);
	dst->row = update_strdup(src->row);
}

void
dm_update_clear(dm_update *u)
{
	if (u == NULL)
		return;
	free(u->domain);
	free(u->policy);
	free(u->row);
	memset(u, 0, sizeof(*u));
}

void
dm_update_policy_id(const char *policy, char out[17])
{
	const unsigned char *p = (const unsigned char *)(policy ? policy : "");
	uint64_t h = FNV64_OFFSET;

	for (; *p != '\0'; p++) {
		h ^= *p;
		h *= FNV64_PRIME;
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

struct dm_fp {
	EVP_MD_CTX *md;
	size_t body;		/* body bytes hashed so far */
	uint64_t total;		/* body bytes seen */
};

dm_fp *
dm_fp_new(void)
{
	dm_fp *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	if ((f->md = EVP_MD_CTX_new()) == NULL) {
		free(f);
		return NULL;
	}
	dm_fp_reset(f);
	return f;
}

void
dm_fp_free(dm_fp *f)
{
	if (f == NULL)
		return;
	EVP_MD_CTX_free(f->md);
	free(f);
}

void
dm_fp_reset(dm_fp *f)
{
	if (EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
		dm_log_oom();
	f->body = 0;
	f->total = 0;
}

void
dm_fp_field(dm_fp *f, char tag, const char *value)
{
	char len[24];

	if (value == NULL)
		value = "";
	snprintf(len, sizeof(len), "%c%zu:", tag, strlen(value));
	(void)EVP_DigestUpdate(f->md, len, strlen(len));
	(void)EVP_DigestUpdate(f->md, value, strlen(value));
}

void
dm_fp_body(dm_fp *f, const unsigned char *p, size_t len)
{
	f->total += len;
	if (f->body >= DM_FP_BODY_MAX)
		return;
	if (len > DM_FP_BODY_MAX - f->body)
		len = DM_FP_BODY_MAX - f->body;
	(void)EVP_DigestUpdate(f->md, p, len);
	f->body += len;
}

void
dm_fp_final(dm_fp *f, char out[DM_FP_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[EVP_MAX_MD_SIZE];
	char total[24];
	unsigned int n = 0, i;

	snprintf(total, sizeof(total), "%" PRIu64, f->total);
	dm_fp_field(f, 'B', total);
	if (EVP_DigestFinal_ex(f->md, d, &n) != 1 || n * 2 < DM_FP_LEN)
		dm_log_oom();
	for (i = 0; i < DM_FP_LEN / 2; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0xf];
	}
	out[DM_FP_LEN] = '\0';
	dm_fp_reset(f);
}
