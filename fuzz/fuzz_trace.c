/* Fuzz target: the trace decoder (traces/trace_format.c) and the replayer (traces/replay.c)
 * through trace_fuzz_one: the input is a trace file (its CRCs are fixed up first so
 * mutations reach the decoder and the device models); whatever decodes is replayed against
 * fresh device models with no disk files opened.
 * Invariants (abort() on violation): the status is MATCH, DIVERGED or BAD; replay is
 * deterministic: the same input replayed again gives the same status. */
#include <stdint.h>
#include <stdlib.h>

#include "traces/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int a = trace_fuzz_one(data, size);

    if (a != REPLAY_MATCH && a != REPLAY_DIVERGED && a != REPLAY_BAD)
        abort();
    /* Replaying is cheap next to the decode for small inputs; keep the second run bounded. */
    if (size <= 16384 && trace_fuzz_one(data, size) != a)
        abort();    /* replay is not deterministic */
    return 0;
}
