// MMTN_CLONES: compile a float row loop for AVX-512, for AVX2 + FMA and for the baseline,
// picked at load time (GCC target_clones on x86-64; nothing elsewhere).
#pragma once

#if defined(__GNUC__) && defined(__x86_64__)
#define MMTN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MMTN_CLONES
#endif
