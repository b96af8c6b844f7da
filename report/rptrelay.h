/*
 * report/rptrelay.h - handing a report mail to an SMTP relay (SMTPRelay)
 * with libcurl's SMTP client: STARTTLS or implicit TLS, AUTH, the
 * alternative to the local sendmail program (rptsend.h).
 */
#ifndef RPTRELAY_H
#define RPTRELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "dm_status.h"

typedef enum rpt_relay_tls {
	RPT_TLS_STARTTLS = 0,	/* port 587 by default; TLS is required */
	RPT_TLS_SMTPS,		/* implicit TLS, port 465 by default */
	RPT_TLS_NONE		/* plain text, port 25 by default */
} rpt_relay_tls;

typedef struct rpt_relay {
	/* "host", "host:port", "[v6addr]" or "[v6addr]:port" */
	const char *hostport;
	rpt_relay_tls tls;
	const char *user;	/* NULL: no AUTH */
	const char *password;
	const char *ca_file;	/* NULL: the system's CAs */
	bool verify;		/* peer certificate and host name */
	bool auth_plaintext;	/* allow AUTH with RPT_TLS_NONE */
} rpt_relay;

/*
 * The safe settings: RPT_TLS_STARTTLS, verify true, no AUTH, system CAs.
 * A struct zeroed by hand does NOT verify; start from this instead.
 */
void rpt_relay_defaults(rpt_relay *o);

/*
 * curl_global_init, once per process (pthread_once). rpt_send_relay calls
 * it itself; a program that uses libcurl elsewhere too calls this first,
 * while it has a single thread, since libcurl's global state is not safe
 * to set up concurrently with other users of it. 0 or -1. There is no
 * matching cleanup: the state lives until the process exits.
 */
int rpt_relay_global_init(void);

/*
 * Sends the len bytes of eml from "from" to the n >= 1 rcpts through the
 * relay, in one SMTP transaction on a connection of its own.
 *
 * - RPT_TLS_STARTTLS: the relay must offer STARTTLS and the handshake
 *   must succeed before anything else is said; the mail never goes in
 *   plain text. RPT_TLS_SMTPS: TLS from the first byte. TLS 1.2 or newer.
 * - verify: the relay's certificate must chain to ca_file (PEM; then
 *   only to it) or else to the system's CAs, and name the host of
 *   hostport. Without verify the TLS is open to a man in the middle,
 *   and so is the password.
 * - AUTH (user != NULL) happens only inside TLS: with RPT_TLS_NONE it is
 *   refused unless auth_plaintext is set. The mechanism is the best the
 *   relay offers that libcurl knows (PLAIN, LOGIN, CRAM-MD5, ...).
 * - eml goes out as it is, with CRLF line ends: libcurl does the dot-
 *   stuffing (RFC 5321 4.5.2) and adds the final ".", with a CRLF before
 *   it only when eml does not end in one. A bare CR or LF or a NUL is
 *   refused: a bare LF followed by "." would escape the dot-stuffing.
 * - from and every rcpt: non-empty, no control bytes, no '<' or '>'.
 * - timeout_sec bounds the whole call (connecting, at most 30 s of it);
 *   <= 0 means 300 s: a relay is never waited for without a limit. At
 *   the deadline the connection is shut down (libcurl would otherwise
 *   still wait for the answer to QUIT), so the call returns within about
 *   a second of it. A timeout after the final "." may leave the message
 *   delivered: a retry can then send it twice, as with any SMTP client.
 * - No signal is used or raised: CURLOPT_NOSIGNAL, and libcurl writes
 *   with MSG_NOSIGNAL, also under TLS, so a relay that hangs up cannot
 *   SIGPIPE the caller. Thread-safe: each call has its own handle once
 *   rpt_relay_global_init has run; sockets are close-on-exec.
 *
 * DM_OK: the relay accepted the message for every recipient.
 * DM_TEMPFAIL: try again later: a 4xx reply, no connection,
 *   a timeout, a dropped connection, no STARTTLS, a TLS or certificate
 *   failure (the relay's or our configuration may be fixed meanwhile).
 * DM_PERMFAIL: the same call would fail again: a 5xx reply
 *   (a recipient refused - one is enough, the mail is not sent to the
 *   others -, AUTH refused with 535, the message refused after DATA) or
 *   arguments or settings that are invalid.
 * On failure err holds "HOST:PORT: " and the relay's reply, e.g.
 * "relay.example:587: 550 5.1.1 <x@y.example>: Recipient address rejected
 * (RCPT failed: 550)", or libcurl's error when there was no bad reply. The
 * password never appears in err; nothing is logged here.
 */
dm_status rpt_send_relay(const rpt_relay *o, const char *from,
    const char *const *rcpts, size_t n, const char *eml, size_t len,
    int timeout_sec, char *err, size_t errlen);

#endif
