/*
 * milter/mltproto.h - the milter protocol's bytes: framing, the
 * arguments of each MTA command, the order of commands, and the replies
 * we write. Pure: bytes in, values out, no I/O and no state beyond what
 * the caller holds. References: Postfix's src/milter/milter8.c (what an
 * MTA sends and expects) and Sendmail's libmilter documentation.
 *
 * A packet is a 32-bit big-endian length (the command byte included),
 * one command byte, then the data.
 */
#ifndef MLTPROTO_H
#define MLTPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest packet we take: Postfix sends a header field whole. */
#define MLT_PROTO_MAX	(1024 * 1024)

/* MTA commands (SMFIC_*) */
#define MLT_C_ABORT	'A'
#define MLT_C_BODY	'B'
#define MLT_C_CONNECT	'C'
#define MLT_C_MACRO	'D'
#define MLT_C_BODYEOB	'E'
#define MLT_C_HELO	'H'
#define MLT_C_QUIT_NC	'K'
#define MLT_C_HEADER	'L'
#define MLT_C_MAIL	'M'
#define MLT_C_EOH	'N'
#define MLT_C_OPTNEG	'O'
#define MLT_C_QUIT	'Q'
#define MLT_C_RCPT	'R'
#define MLT_C_DATA	'T'
#define MLT_C_UNKNOWN	'U'

/* Our replies and modifications (SMFIR_*) */
#define MLT_R_ACCEPT	'a'
#define MLT_R_CONTINUE	'c'
#define MLT_R_ADDHEADER	'h'
#define MLT_R_INSHEADER	'i'
#define MLT_R_CHGHEADER	'm'
#define MLT_R_OPTNEG	'O'
#define MLT_R_QUARANTINE 'q'
#define MLT_R_REJECT	'r'
#define MLT_R_TEMPFAIL	't'
#define MLT_R_REPLYCODE	'y'

/* Actions (SMFIF_*) and protocol steps (SMFIP_*) of negotiation */
#define MLT_F_ADDHDRS	0x01u
#define MLT_F_CHGHDRS	0x10u
#define MLT_F_QUARANTINE 0x20u
#define MLT_P_NR_HDR	0x80u
#define MLT_P_NOUNKNOWN	0x100u
#define MLT_P_NR_HELO	0x2000u
#define MLT_P_NR_RCPT	0x8000u
#define MLT_P_NR_DATA	0x10000u
#define MLT_P_NR_EOH	0x40000u
#define MLT_P_NR_BODY	0x80000u
#define MLT_P_HDR_LEADSPC 0x100000u

#define MLT_PROTO_VMIN	2
#define MLT_PROTO_VMAX	6

typedef struct mlt_pkt {
	char cmd;
	const unsigned char *data;	/* into the caller's buffer */
	size_t len;
} mlt_pkt;

/*
 * The packet at the front of buf[0..len): 1 with *p and *used (its
 * bytes, header included); 0 when more bytes are needed; -1 when the
 * length field is malformed (0, or over max), with *why.
 */
int mlt_proto_next(const unsigned char *buf, size_t len, size_t max,
    mlt_pkt *p, size_t *used, const char **why);

/*
 * The NUL-terminated strings of data[0..len) into v[0..max): their
 * count, or -1 when the data does not end with a NUL or holds more
 * than max. The strings point into the packet.
 */
int mlt_proto_strings(const unsigned char *data, size_t len,
    const char **v, size_t max);

typedef struct mlt_optneg {
	uint32_t version, actions, protocol;
} mlt_optneg;

typedef struct mlt_connect {
	const char *host;
	char family;		/* '4', '6', 'L' (unix), 'U' (unknown) */
	uint16_t port;
	const char *addr;	/* "" for 'U' */
} mlt_connect;

/* The arguments of one command; -1 with *why when malformed. */
int mlt_proto_optneg(const mlt_pkt *p, mlt_optneg *o, const char **why);
int mlt_proto_connect(const mlt_pkt *p, mlt_connect *c, const char **why);

/*
 * The order of commands on a connection. *state starts at 0; each
 * command moves it on, or -1 with *why when it cannot come now.
 */
int mlt_proto_order(int *state, char cmd, const char **why);

/* Where replies are written: a buffer that grows (out of memory exits). */
typedef struct mlt_obuf {
	unsigned char *p;
	size_t len, cap;
} mlt_obuf;

void mlt_obuf_free(mlt_obuf *b);
void mlt_proto_put(mlt_obuf *b, char cmd, const void *data, size_t len);
void mlt_proto_put_optneg(mlt_obuf *b, const mlt_optneg *o);
/* INSHEADER/CHGHEADER (with idx) and ADDHEADER (idx < 0). */
void mlt_proto_put_header(mlt_obuf *b, char cmd, long idx,
    const char *name, const char *value);
/* A command with one string: REPLYCODE, QUARANTINE. */
void mlt_proto_put_str(mlt_obuf *b, char cmd, const char *s);

#endif
