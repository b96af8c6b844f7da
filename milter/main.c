/* milter/main.c - placeholder until the daemon lands. */
#include "config.h"
int main(void) { return 0; }
