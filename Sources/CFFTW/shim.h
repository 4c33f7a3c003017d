#include <fftw3.h>
#if defined(__linux__)
// mallopt, for QSMCore.MemoryPolicy (FFTW's and Swift's large work arrays come from malloc).
#include <malloc.h>
#endif
// Software prefetch for the fused column pass (rows a plane apart, which hardware prefetchers miss).
static inline void qsm_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
static inline void qsm_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }
