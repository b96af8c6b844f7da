/*
 * dm_dkimkey.h - a cache in front of OpenSSL's decoding of DKIM public
 * keys, for libopendkim.
 *
 * libopendkim decodes the key of every signature it verifies
 * (d2i_PUBKEY_bio), and with OpenSSL 3.0's decoder framework that costs
 * 120-150 us, six times the RSA-2048 verification itself and a third of
 * the milter's CPU per signed message; libopendkim has no way to be
 * handed a decoded key. lib/dkimkey.c therefore defines d2i_PUBKEY_bio
 * itself, which the dynamic linker binds libopendkim to (an
 * executable's definition takes the place of the library's): keys read
 * from a memory BIO are looked up by their DER bytes and shared by
 * reference count (EVP_PKEY is safe to share for verification);
 * everything else goes to libcrypto's function. The key bytes still
 * come from DNS for every message, so a rotated or revoked key is never
 * served from the cache.
 */
#ifndef DM_DKIMKEY_H
#define DM_DKIMKEY_H

#include <stddef.h>
#include <stdint.h>

#include "dm_status.h"

/*
 * Finds libcrypto's d2i_PUBKEY_bio and checks that the process binds to
 * ours; dm_dkim_new calls it (which also links this module into every
 * program that verifies DKIM), and a program stops at start-up with err
 * rather than run without the override. DM_OK or DM_PERMFAIL.
 */
dm_status dm_dkimkey_init(char *err, size_t errlen);

/* Decodes served from the cache, and decodes done by libcrypto. */
void dm_dkimkey_stats(uint64_t *hits, uint64_t *misses);

#endif
