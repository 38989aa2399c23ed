/*
 * Compile-time checks that the Rust declarations in src/lib.rs match Solo5's headers
 * (written for this project; compiled with the Solo5 sources by build.rs).
 */
#include <stddef.h>
#include "reader.h"
#include "writer.h"

/* src/lib.rs: `ReaderState`, five u64 in this order. */
_Static_assert(sizeof(struct muchannel_reader) == 40, "struct muchannel_reader size");
_Static_assert(offsetof(struct muchannel_reader, epoch) == 0, "epoch offset");
_Static_assert(offsetof(struct muchannel_reader, protocol) == 8, "protocol offset");
_Static_assert(offsetof(struct muchannel_reader, size) == 16, "size offset");
_Static_assert(offsetof(struct muchannel_reader, elements) == 24, "elements offset");
_Static_assert(offsetof(struct muchannel_reader, rc) == 32, "rc offset");
/* The header the channel starts with (muen-channel's `Header`). */
_Static_assert(sizeof(struct muchannel_header) == 64, "header size");
_Static_assert(offsetof(struct muchannel, data) == 64, "data offset");
/* src/lib.rs: the read result is a C int with these values. */
_Static_assert(sizeof(enum muchannel_reader_result) == sizeof(int), "result size");
_Static_assert(MUCHANNEL_INACTIVE == 0, "INACTIVE");
_Static_assert(MUCHANNEL_INCOMPATIBLE_INTERFACE == 1, "INCOMPATIBLE_INTERFACE");
_Static_assert(MUCHANNEL_EPOCH_CHANGED == 2, "EPOCH_CHANGED");
_Static_assert(MUCHANNEL_NO_DATA == 3, "NO_DATA");
_Static_assert(MUCHANNEL_OVERRUN_DETECTED == 4, "OVERRUN_DETECTED");
_Static_assert(MUCHANNEL_SUCCESS == 5, "SUCCESS");
