/*
 * lib/dkimkey.c - the DKIM public-key cache of dm_dkimkey.h: our
 * d2i_PUBKEY_bio in front of libcrypto's.
 *
 * A direct-mapped table of DKIMKEY_SLOTS decoded keys, keyed by their DER
 * bytes (compared whole, not only hashed); a new key replaces its slot's.
 * The cache holds one reference of each key, every caller gets its own.
 *
 * It also reads the second form of an RSA key RFC 6376 3.6.1 allows: p=
 * is "an RSAPublicKey (PKCS#1)" in its text, while signers (and
 * libopendkim) use a SubjectPublicKeyInfo. Bytes that are not an SPKI
 * are tried as a PKCS#1 RSAPublicKey, which must then fill them exactly.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "dm_hash.h"
#include "dm_dkimkey.h"
#include "dm_log.h"

#define DKIMKEY_SLOTS	256
#define DKIMKEY_MAX_DER	4096	/* RSA-4096 is ~550 bytes */

typedef EVP_PKEY *(*dkimkey_d2i)(BIO *, EVP_PKEY **);

struct dkimkey_slot {
	unsigned char *der;
	size_t len;
	EVP_PKEY *key;
};

static pthread_once_t dkimkey_once = PTHREAD_ONCE_INIT;
static dkimkey_d2i dkimkey_real;
static pthread_mutex_t dkimkey_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dkimkey_slot dkimkey_slots[DKIMKEY_SLOTS];
static uint64_t dkimkey_hits, dkimkey_misses;

static const char *dkimkey_fault;

/*
 * libcrypto's function behind ours, and proof that ours is the one the
 * process binds to: with a static libcrypto, or a link that put
 * libcrypto's definition first, libopendkim would call libcrypto
 * directly and the cache would silently do nothing.
 */
static void
dkimkey_find_real(void)
{
	void *bound = dlsym(RTLD_DEFAULT, "d2i_PUBKEY_bio");

	dkimkey_real = (dkimkey_d2i)dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");
	if (dkimkey_real == NULL)
		dkimkey_fault = "libcrypto's d2i_PUBKEY_bio not found behind ours";
	else if (bound != (void *)d2i_PUBKEY_bio)
		dkimkey_fault = "d2i_PUBKEY_bio: the process does not bind to "
		    "ours (lib/dkimkey.c), libopendkim would bypass the key "
		    "cache";
}

dm_status
dm_dkimkey_init(char *err, size_t errlen)
{
	(void)pthread_once(&dkimkey_once, dkimkey_find_real);
	if (dkimkey_fault == NULL)
		return DM_OK;
	snprintf(err, errlen, "dkim: %s", dkimkey_fault);
	return DM_PERMFAIL;
}

void
dm_dkimkey_stats(uint64_t *hits, uint64_t *misses)
{
	pthread_mutex_lock(&dkimkey_mu);
	*hits = dkimkey_hits;
	*misses = dkimkey_misses;
	pthread_mutex_unlock(&dkimkey_mu);
}

static size_t
dkimkey_slot_of(const unsigned char *p, size_t len)
{
	return dm_hash_add(DM_HASH_INIT, p, len) % DKIMKEY_SLOTS;
}

/* A new reference to the cached key of these bytes, or NULL. */
static EVP_PKEY *
dkimkey_get(const unsigned char *der, size_t len)
{
	struct dkimkey_slot *s = &dkimkey_slots[dkimkey_slot_of(der, len)];
	EVP_PKEY *k = NULL;

	pthread_mutex_lock(&dkimkey_mu);
	if (s->key != NULL && s->len == len && memcmp(s->der, der, len) == 0 &&
	    EVP_PKEY_up_ref(s->key) == 1) {
		k = s->key;
		dkimkey_hits++;
	} else
		dkimkey_misses++;
	pthread_mutex_unlock(&dkimkey_mu);
	return k;
}

/* Keep k (a reference of its own) for these bytes. */
static void
dkimkey_put(const unsigned char *der, size_t len, EVP_PKEY *k)
{
	struct dkimkey_slot *s = &dkimkey_slots[dkimkey_slot_of(der, len)];
	unsigned char *copy;
	EVP_PKEY *old;

	if ((copy = malloc(len)) == NULL || EVP_PKEY_up_ref(k) != 1) {
		free(copy);
		return;		/* not kept: nothing is lost but time */
	}
	memcpy(copy, der, len);
	pthread_mutex_lock(&dkimkey_mu);
	old = s->key;
	free(s->der);
	s->der = copy;
	s->len = len;
	s->key = k;
	pthread_mutex_unlock(&dkimkey_mu);
	EVP_PKEY_free(old);
}

/* The bytes as a PKCS#1 RSAPublicKey with nothing after it, or NULL. */
static EVP_PKEY *
dkimkey_pkcs1(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *k;

	k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	if (k != NULL && p != der + len) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

/* Not cached: libcrypto's decode, then the PKCS#1 form. */
static EVP_PKEY *
dkimkey_decode(BIO *bp, const unsigned char *der, size_t len)
{
	EVP_PKEY *k;

	ERR_set_mark();
	if ((k = dkimkey_real(bp, NULL)) == NULL &&
	    (k = dkimkey_pkcs1(der, len)) != NULL)
		(void)ERR_pop_to_mark();	/* the SPKI attempt's errors */
	else
		(void)ERR_clear_last_mark();
	return k;
}

/*
 * libopendkim calls this with a memory BIO over the key's DER and a NULL
 * second argument; any other use goes straight to libcrypto. The BIO is
 * consumed as libcrypto would (read to its end).
 */
EVP_PKEY *
d2i_PUBKEY_bio(BIO *bp, EVP_PKEY **a)
{
	unsigned char der[DKIMKEY_MAX_DER];
	char *data;
	long n;
	EVP_PKEY *k;

	(void)pthread_once(&dkimkey_once, dkimkey_find_real);
	if (dkimkey_real == NULL)
		return NULL;	/* refused at start-up (dm_dkimkey_init) */
	if (a != NULL || bp == NULL || BIO_method_type(bp) != BIO_TYPE_MEM ||
	    (n = BIO_get_mem_data(bp, &data)) <= 0 || n > DKIMKEY_MAX_DER)
		return dkimkey_real(bp, a);
	memcpy(der, data, (size_t)n);
	if ((k = dkimkey_get(der, (size_t)n)) != NULL) {
		(void)BIO_read(bp, der, (int)n);
		return k;
	}
	if ((k = dkimkey_decode(bp, der, (size_t)n)) != NULL)
		dkimkey_put(der, (size_t)n, k);
	return k;
}
