// open_beneath: opens a relative path beneath a directory descriptor
// without following a symlink in any component, in one openat2(2)
// (RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH) where the kernel has it, else one
// O_NOFOLLOW openat per component. The tile door opens tenant-written
// catalog files this way: a symlink a task left in its output (to another
// environment's catalog, or /etc) is never followed.
#pragma once

#include <string_view>

namespace kiln::server {

// `path`: relative, components separated by single '/', no "." or ".."
// (the caller builds it from validated names). `flags`: open(2) flags
// (O_CLOEXEC and O_NOFOLLOW are added). Returns the descriptor, or -1 with
// errno set as openat would: ELOOP when a component is a symlink (ENOTDIR
// for a symlinked directory on the way when walking), ENOENT, ENOTDIR,
// EXDEV for a path that would leave `dir` or is not plain, ...
int open_beneath(int dir, std::string_view path, int flags);

// The component-by-component walk open_beneath falls back to when
// openat2 is missing (kernels before 5.6, seccomp filters). Exposed for the
// tests; the same contract.
int open_beneath_walk(int dir, std::string_view path, int flags);

}  // namespace kiln::server
