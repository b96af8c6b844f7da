/*
 * dm_msgstream.h - a whole message from a file descriptor into a dm_msg
 * (lib/msgstream.c), the way an MTA hands it to the milter: for
 * dmarc-check, the tests and the fuzz targets.
 */
#ifndef DM_MSGSTREAM_H
#define DM_MSGSTREAM_H

#include <stddef.h>

#include "dm_engine.h"
#include "dm_status.h"

/*
 * Bare LF becomes CRLF, headers are split and unfolded for the engine,
 * the body is streamed in chunks. DM_PERMFAIL with err for unreadable
 * input.
 */
dm_status dm_msg_feed_stream(dm_msg *m, int fd, char *err, size_t errlen);

#endif
