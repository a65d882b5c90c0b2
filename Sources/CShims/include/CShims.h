#ifndef ESAFETY_CSHIMS_H
#define ESAFETY_CSHIMS_H
// Small C helpers that Swift cannot spell itself.

/// Hint the CPU to fetch the cache line at `p` (read, keep in all cache levels).
static inline void esafety_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
