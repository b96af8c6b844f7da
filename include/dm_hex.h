/*
 * dm_hex.h - %XX coding (lib/util/hex.c), the one escape of the texts we
 * store and read back: report rows, journal records, Redis keys, and the
 * %-encoding of mailto URIs.
 */
#ifndef DM_HEX_H
#define DM_HEX_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The n bytes at in, every %XX decoded, into out (len bytes, NUL
 * terminated). A '%' must be followed by exactly two hex digits, and
 * none may decode to NUL (the results are C strings): anything else,
 * or no room, is false. Bytes other than '%' are copied as they are.
 */
bool dm_hex_decode(const char *in, size_t n, char *out, size_t len);

/* The value of one hex digit, either case; -1 for any other byte. */
int dm_hex_value(char c);

/*
 * c as "%XX" (upper case) into out[4], NUL terminated. The callers
 * decide which bytes are plain; every other byte goes through here.
 */
void dm_hex_escape(unsigned char c, char out[4]);

#endif
