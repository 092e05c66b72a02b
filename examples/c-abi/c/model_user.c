/* A C caller of a neulens model, as C firmware would write it: static buffers sized by the
 * generated header, one call, no allocation. Compiled by build.rs with the cc crate. */
#include <stddef.h>
#include "demo.h"

static float input[NEULENS_DEMO_INPUT_LEN];
static float arena[NEULENS_DEMO_ARENA_LEN];

/* The same deterministic input as the Rust side (exact in float). */
static void make_input(float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        x[i] = (float)((i * 37u) % 101u) / 50.0f - 1.0f;
    }
}

/* Runs the model on the deterministic input; writes NEULENS_DEMO_OUTPUT_LEN floats to out. */
int c_demo_run(float *out) {
    make_input(input, NEULENS_DEMO_INPUT_LEN);
    return neulens_demo_infer(input, arena, out);
}

/* The entry point must refuse NULL pointers with -1 instead of crashing. */
int c_demo_null_check(void) {
    float out[NEULENS_DEMO_OUTPUT_LEN];
    return neulens_demo_infer(NULL, arena, out);
}

/* The sizes the header promises, for the test to compare with the Rust constants. */
unsigned long c_demo_sizes(int which) {
    switch (which) {
    case 0: return NEULENS_DEMO_INPUT_LEN;
    case 1: return NEULENS_DEMO_OUTPUT_LEN;
    case 2: return NEULENS_DEMO_ARENA_LEN;
    default: return (unsigned long)NEULENS_DEMO_MACS;
    }
}
