#include "machine.h"
#include "prng.h"

uint64_t machine_device_seed(uint64_t run_seed, unsigned index)
{
    uint64_t x = run_seed ^ (0x5eedULL << 32) ^ index;
    return prng_splitmix64(&x);
}
