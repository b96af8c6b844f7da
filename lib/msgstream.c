/*
 * lib/msgstream.c - feeds a whole message from a file descriptor to a
 * dm_msg, the way an MTA would hand it to the milter: header fields one
 * by one (folding kept, CRLF line ends), then the body in chunks.
 *
 * Messages on disk usually have bare LF line ends: they become CRLF, as
 * on the wire, since signatures are computed over CRLF. The body is
 * streamed, never held; a header field may be long, but is bounded.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm_engine.h"
#include "dm_log.h"
#include "dm_msgstream.h"

#define STREAM_CHUNK		65536
#define STREAM_FIELD_MAX	(4u << 20)	/* one header field */
#define STREAM_HEADER_MAX	(64u << 20)	/* the whole header section */

struct stream {
	dm_msg *m;
	char *field;		/* the header field being collected */
	size_t flen, fcap;
	char *line;		/* the current header line */
	size_t llen, lcap;
	size_t header_bytes;
	bool in_body;
	bool first_line;
	bool body_cr;		/* the last body byte fed was CR */
	unsigned char out[2 * STREAM_CHUNK];
	size_t olen;
	char *err;
	size_t errlen;
};

static dm_status
stream_grow(char **buf, size_t *cap, size_t need, size_t max)
{
	size_t ncap = *cap ? *cap : 256;
	char *p;

	if (need <= *cap)
		return DM_OK;
	if (need > max)
		return DM_PERMFAIL;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(*buf, ncap)) == NULL)
		dm_log_oom();
	*buf = p;
	*cap = ncap;
	return DM_OK;
}

/* Hand the collected field to the engine as name and raw value. */
static dm_status
stream_flush_field(struct stream *s)
{
	char *colon;

	if (s->flen == 0)
		return DM_OK;
	s->field[s->flen] = '\0';
	s->flen = 0;
	if ((colon = strchr(s->field, ':')) == NULL)
		return DM_OK;
	*colon = '\0';
	s->field[strcspn(s->field, " \t")] = '\0';
	return dm_msg_header(s->m, s->field, colon + 1);
}

/*
 * A header name: printable ASCII without space (RFC 5322 2.2), and the
 * white space before the colon that RFC 5322 4.5 allows ("From :").
 * MTAs take such a line as a header field and hand the milter the bare
 * name, so a check that did not would see no From field at all.
 */
static bool
stream_is_field(const char *line, size_t len)
{
	size_t i, name = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == ':')
			return name > 0;
		if (c == ' ' || c == '\t') {
			if (name == 0)
				return false;
		} else if (c <= 32 || c >= 127 || name < i)
			return false;
		else
			name++;
	}
	return false;
}

static dm_status
stream_body(struct stream *s, const unsigned char *p, size_t len)
{
	size_t i;
	dm_status st;

	for (i = 0; i < len; i++) {
		if (s->olen + 2 > sizeof(s->out)) {
			if ((st = dm_msg_body(s->m, s->out, s->olen)) != DM_OK)
				return st;
			s->olen = 0;
		}
		if (p[i] == '\n' && !s->body_cr)
			s->out[s->olen++] = '\r';
		s->out[s->olen++] = p[i];
		s->body_cr = p[i] == '\r';
	}
	return DM_OK;
}

static dm_status
stream_start_body(struct stream *s)
{
	dm_status st;

	if ((st = stream_flush_field(s)) != DM_OK)
		return st;
	s->in_body = true;
	return dm_msg_eoh(s->m);
}

/* One complete header line (without its line end). */
static dm_status
stream_header_line(struct stream *s)
{
	size_t len = s->llen;
	dm_status st;
	bool cont;

	if (s->first_line && len >= 5 && memcmp(s->line, "From ", 5) == 0) {
		s->first_line = false;	/* an mbox envelope line */
		return DM_OK;
	}
	s->first_line = false;
	if (len == 0)
		return stream_start_body(s);
	cont = (s->line[0] == ' ' || s->line[0] == '\t') && s->flen > 0;
	if (!cont && !stream_is_field(s->line, len)) {
		/* Not a header: the header section ended without a blank. */
		if ((st = stream_start_body(s)) != DM_OK)
			return st;
		if ((st = stream_body(s, (unsigned char *)s->line, len)) !=
		    DM_OK)
			return st;
		return stream_body(s, (const unsigned char *)"\r\n", 2);
	}
	if (!cont && (st = stream_flush_field(s)) != DM_OK)
		return st;
	if ((st = stream_grow(&s->field, &s->fcap, s->flen + len + 3,
	    STREAM_FIELD_MAX)) != DM_OK)
		return st;
	if (cont) {
		memcpy(s->field + s->flen, "\r\n", 2);
		s->flen += 2;
	}
	memcpy(s->field + s->flen, s->line, len);
	s->flen += len;
	return DM_OK;
}

/* Header bytes: split into lines; returns how many bytes were used. */
static dm_status
stream_headers(struct stream *s, const unsigned char *p, size_t len,
    size_t *used)
{
	size_t i;
	dm_status st;

	for (i = 0; i < len && !s->in_body; i++) {
		if (++s->header_bytes > STREAM_HEADER_MAX)
			return DM_PERMFAIL;
		if (p[i] != '\n') {
			if ((st = stream_grow(&s->line, &s->lcap, s->llen + 1,
			    STREAM_FIELD_MAX)) != DM_OK)
				return st;
			s->line[s->llen++] = (char)p[i];
			continue;
		}
		if (s->llen > 0 && s->line[s->llen - 1] == '\r')
			s->llen--;
		st = stream_header_line(s);
		s->llen = 0;
		if (st != DM_OK)
			return st;
	}
	*used = i;
	return DM_OK;
}

static dm_status
stream_feed(struct stream *s, const unsigned char *p, size_t len)
{
	size_t used = 0;
	dm_status st;

	if (!s->in_body &&
	    (st = stream_headers(s, p, len, &used)) != DM_OK)
		return st;
	if (s->in_body && used < len)
		return stream_body(s, p + used, len - used);
	return DM_OK;
}

/* End of input: a message may stop inside its header section. */
static dm_status
stream_finish(struct stream *s)
{
	dm_status st;

	if (!s->in_body) {
		if (s->llen > 0 && (st = stream_header_line(s)) != DM_OK)
			return st;
		if (!s->in_body && (st = stream_start_body(s)) != DM_OK)
			return st;
	}
	if (s->olen > 0)
		return dm_msg_body(s->m, s->out, s->olen);
	return DM_OK;
}

dm_status
dm_msg_feed_stream(dm_msg *m, int fd, char *err, size_t errlen)
{
	struct stream *s;
	unsigned char *buf = NULL;
	dm_status st = DM_OK;
	ssize_t n;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (buf = malloc(STREAM_CHUNK)) == NULL)
		dm_log_oom();
	s->m = m;
	s->first_line = true;
	if (errlen > 0)
		*err = '\0';
	while (st == DM_OK) {
		n = read(fd, buf, STREAM_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			st = DM_PERMFAIL;
			break;
		}
		if (n == 0) {
			st = stream_finish(s);
			break;
		}
		st = stream_feed(s, buf, (size_t)n);
	}
	if (st == DM_PERMFAIL && *err == '\0')
		snprintf(err, errlen, "header section too large (a field over "
		    "%u MB or all over %u MB)", STREAM_FIELD_MAX >> 20,
		    STREAM_HEADER_MAX >> 20);
	free(s->field);
	free(s->line);
	free(s);
	free(buf);
	return st;
}
