#pragma once
// Linux interfaces that Glibc's Swift module does not export.
#include <sys/signalfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>

// memfd_create(2) is declared only under _GNU_SOURCE, which Swift's Glibc module does not set;
// the raw system call needs no feature macro (Linux >= 3.17).
static inline int fluxgate_memfd_create(const char *name, unsigned int flags) {
    return (int)syscall(SYS_memfd_create, name, flags);
}

// Sequentially consistent atomics on memory shared between processes (an mmap'd segment):
// Swift's `Atomic` must own its storage, so it cannot sit on a pointer into a mapping.
static inline int64_t fluxgate_atomic_add(int64_t *p, int64_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline int64_t fluxgate_atomic_load(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void fluxgate_atomic_store(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }

// The log timestamp's first 20 bytes ("2026-11-22T03:09:25.") change once a second: each thread
// keeps the last ones it formatted, so a request line does not call gmtime_r (~1,200 of its
// instructions). Per thread, because any thread may log.
struct fluxgate_second_text { int64_t seconds; unsigned char text[20]; };
static inline struct fluxgate_second_text *fluxgate_second_text_cache(void) {
    static __thread struct fluxgate_second_text cache = { -1, { 0 } };
    return &cache;
}

// pidfd_open(2) and pidfd_getfd(2) (Linux >= 5.6), which glibc 2.36 does not wrap: the process
// tests look at a worker's own sockets with them.
static inline int fluxgate_pidfd_open(int pid) { return (int)syscall(434, pid, 0); }
static inline int fluxgate_pidfd_getfd(int pidfd, int fd) { return (int)syscall(438, pidfd, fd, 0); }
