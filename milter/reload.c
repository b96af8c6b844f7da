/* milter/reload.c - placeholder until the daemon lands. */
#include "config.h"
