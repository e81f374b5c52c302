// Clang thread-safety annotations (-Wthread-safety): what each mutex guards
// and what a function expects to hold, checked at compile time by `make tsa`.
// Other compilers see nothing. Use them with kiln::Mutex (common/mutex.h);
// std::mutex carries no annotations, so the analysis cannot see it.
#pragma once

#if defined(__clang__)
#define KILN_TSA(x) __attribute__((x))
#else
#define KILN_TSA(x)
#endif

// A type that is a lock (a mutex).
#define CAPABILITY(name) KILN_TSA(capability(name))
// An RAII type that holds a lock for its lifetime.
#define SCOPED_CAPABILITY KILN_TSA(scoped_lockable)
// A member only read or written with the mutex held.
#define GUARDED_BY(mu) KILN_TSA(guarded_by(mu))
// A pointer member whose pointee is only touched with the mutex held.
#define PT_GUARDED_BY(mu) KILN_TSA(pt_guarded_by(mu))
// The caller holds these mutexes.
#define REQUIRES(...) KILN_TSA(requires_capability(__VA_ARGS__))
// The caller must not hold these mutexes (the function takes them).
#define EXCLUDES(...) KILN_TSA(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) KILN_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) KILN_TSA(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) KILN_TSA(try_acquire_capability(__VA_ARGS__))
// The function returns a reference to this mutex.
#define RETURN_CAPABILITY(x) KILN_TSA(lock_returned(x))
// For the few places the analysis cannot follow; say why next to each use.
#define NO_THREAD_SAFETY_ANALYSIS KILN_TSA(no_thread_safety_analysis)
