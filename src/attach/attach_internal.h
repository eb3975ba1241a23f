/*
 * attach/attach_internal.h: declarations shared by the files of the
 * injector (proc.c, elf.c, inject.c, attach.c).
 */
#ifndef HS_ATTACH_INTERNAL_H
#define HS_ATTACH_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "heapsnap/attach.h"
#include "heapsnap/errors.h"

/* ------------------------------------------------------------------ */
/* proc.c: /proc/PID readers.                                          */

#define HS_MAPS_MAX 16384 /* mappings kept; more is refused */

typedef struct hs_map {
	uint64_t start, end, offset;
	char perms[5];
	char *path; /* owned; NULL for anonymous mappings */
} hs_map;

typedef struct hs_maps {
	hs_map *v;
	size_t n;
} hs_maps;

/* Read /proc/PID/maps. @return 0 or HS_EIO/HS_ENOTFOUND/HS_ENOMEM/HS_ELIMIT. */
int hs_attach__maps_read(hs_maps *out, pid_t pid);
void hs_attach__maps_release(hs_maps *m);
/* The lowest mapping of `path` (the ELF header is there), or NULL. */
const hs_map *hs_attach__maps_first(const hs_maps *m, const char *path);

typedef struct hs_proc_status {
	char name[64];
	uid_t ruid, euid;
	pid_t tracer;
	char state;
} hs_proc_status;

/* Read /proc/PID/status. @return 0 or HS_ENOTFOUND (no such process). */
int hs_attach__status(hs_proc_status *out, pid_t pid);

/* Read `len` bytes at `addr` of `pid` (process_vm_readv). @return 0 or HS_EIO. */
int hs_attach__peek(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Write them (process_vm_writev, else PTRACE_POKEDATA: needs a stop). */
int hs_attach__poke(pid_t pid, uint64_t addr, const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* elf.c: exported symbols of a mapped ELF object.                     */

typedef struct hs_elf hs_elf;

/*
 * Open the ELF file `path` of process `pid` (through /proc/PID/root, so a
 * process in another mount namespace is read right) mapped at `map`;
 * `load_bias` is derived from its program headers.
 * @return 0, HS_EIO, HS_EFORMAT (not a valid ELF64 x86-64 file).
 */
int hs_elf_open(hs_elf **out, pid_t pid, const hs_map *first);
void hs_elf_free(hs_elf *e);
/* The run-time address of defined symbol `name` in .dynsym, or 0. */
uint64_t hs_elf_sym(const hs_elf *e, const char *name);
/* The same, and its size (st_size) into *size when not NULL. */
uint64_t hs_elf_sym_sized(const hs_elf *e, const char *name, uint64_t *size);

/* ------------------------------------------------------------------ */
/* inject.c: ptrace, remote calls on x86-64.                           */

typedef struct hs_tracee {
	pid_t pid;                       /* the thread traced: the main thread */
	int attached;
	int dead;                        /* exited or killed: nothing to restore */
	struct user_regs_struct regs;    /* at the stop being worked from */
	unsigned char *xstate;           /* FPU/SSE/AVX state at that stop */
	size_t xstate_len;
	int use_fpregs;                  /* no NT_X86_XSTATE: user_fpregs_struct */
	int sigs[8];                     /* signals that arrived during our calls */
	int nsigs;
	double stopped_since, stopped_total;
} hs_tracee;

/* Seize and interrupt the main thread; wait for the stop. When
 * PTRACE_SEIZE itself fails, *seize_errno is its errno (for the caller to
 * explain) and nothing is set in hs_error_last(). */
int hs_attach__seize(hs_tracee *t, pid_t pid, double timeout, int *seize_errno);
/* PTRACE_CONT or PTRACE_SYSCALL with a signal to deliver (0: none). */
int hs_attach__resume(hs_tracee *t, int request, int sig);
/* Save registers and extended state at the current stop (into t). */
int hs_attach__save(hs_tracee *t);
/* Restore them, with `regs` instead of t->regs when not NULL. */
int hs_attach__restore(hs_tracee *t, const struct user_regs_struct *regs);
/*
 * Call `fn(args...)` in the stopped tracee on the stack of t->regs (below
 * its red zone), returning into address 0: the fault stops it again.
 * Signals arriving meanwhile are held back (t->sigs). Waits `timeout`
 * seconds at most (<= 0: no limit).
 * @return 0 (result in *ret), HS_EIO (the target died, crashed or timed out).
 */
int hs_attach__call(hs_tracee *t, uint64_t fn, const uint64_t *args, int nargs,
                    uint64_t *ret, double timeout);
/* Detach from a stop, then deliver the held-back signals. */
int hs_attach__detach(hs_tracee *t);
void hs_attach__release(hs_tracee *t);

/* Wait for the next stop of the tracee: 0 stopped (*status), 1 timed out,
 * HS_EIO when it died (t->dead set). */
int hs_attach__wait(hs_tracee *t, int *status, double deadline);
double hs_attach__now(void);

/* ------------------------------------------------------------------ */
/* fork_wait.c: fork mode, the injector's side.                         */

typedef struct hs_fork_status {
	uint64_t objects, edges, bytes;
	double child_seconds;
	long long private_dirty;
} hs_fork_status;

/* Remove `path`'s temporary files (`path`.tmp.XXXXXX) left by a failed dump. */
void hs_attach__remove_partial(const char *path);
/* Wait for the status of the child `child` forked by `pid` to write `path`
 * (at most `timeout` + a margin). @return 0 (figures in *fs) or HS_EIO. */
int hs_attach__wait_fork_child(hs_fork_status *fs, int pid, int child, const char *path,
                               double timeout);

#endif
