/*
 * Stand-in for Solo5's bindings/muen/bindings.h, written for this project: the only
 * declarations that Solo5's muen channel sources (reader.c, writer.c, channel.c and
 * util.h) use from it. Not Solo5 code.
 *
 * A quoted #include is looked up first in the including file's own directory, so
 * util.h and writer.c would find Solo5's real bindings.h beside them (which pulls in
 * the whole Solo5 binding layer). build.rs therefore force-includes this file
 * (-include) and it defines the real header's include guard, so that header's body is
 * skipped.
 */
#ifndef SOLO5_CHANNEL_C_BINDINGS_H
#define SOLO5_CHANNEL_C_BINDINGS_H

/* The include guard of bindings/muen/bindings.h. */
#define __MUEN_BINDINGS_H__

#include <stddef.h>
#include <stdint.h>

/* A compiler-only barrier, as Solo5 defines it for every target. */
#define cc_barrier() __asm__ __volatile__("" : : : "memory")

/* Solo5 declares these itself (it is built freestanding); here they resolve to the C
 * library of the benchmark process. */
void *memcpy(void *restrict dest, const void *restrict src, size_t n);
void *memset(void *dest, int c, size_t n);

#endif
