/*
 * lib/util/hex.c - %XX coding, strict both ways: two hex digits after
 * every '%', never a NUL. One decoder, so that no reader of our texts is
 * laxer than another (sscanf's "%2X" took "% A", "%+A" and "%-1").
 */
#include "config.h"

#include "dm_hex.h"

int
dm_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
dm_hex_decode(const char *in, size_t n, char *out, size_t len)
{
	size_t i, o = 0;
	int hi, lo;

	if (len == 0)
		return false;
	for (i = 0; i < n; i++) {
		if (o + 1 >= len || in[i] == '\0')
			return false;
		if (in[i] != '%') {
			out[o++] = in[i];
			continue;
		}
		if (n - i < 3 || (hi = dm_hex_value(in[i + 1])) < 0 ||
		    (lo = dm_hex_value(in[i + 2])) < 0 || (hi | lo) == 0)
			return false;
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[o] = '\0';
	return true;
}

void
dm_hex_escape(unsigned char c, char out[4])
{
	static const char digits[] = "0123456789ABCDEF";

	out[0] = '%';
	out[1] = digits[c >> 4];
	out[2] = digits[c & 15];
	out[3] = '\0';
}
