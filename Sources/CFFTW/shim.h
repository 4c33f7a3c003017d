#include <fftw3.h>
#if defined(__linux__)
// mallopt, for QSMCore.MemoryPolicy (FFTW's and Swift's large work arrays come from malloc).
#include <malloc.h>
#endif
