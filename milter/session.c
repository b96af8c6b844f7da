/* milter/session.c - placeholder until the daemon lands. */
#include "config.h"
