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
	uint64_t sigblk; /* signals blocked by the main thread (SigBlk) */
	int shadow_stack; /* CET user shadow stack on (x86_Thread_features) */
} hs_proc_status;

/* The parent of `pid` (/proc/PID/stat), 0 when unknown. */
int hs_attach__parent_of(int pid);

/* Read /proc/PID/status. @return 0 or HS_ENOTFOUND (no such process). */
int hs_attach__status(hs_proc_status *out, pid_t pid);

/* Read `len` bytes at `addr` of `pid` (process_vm_readv). @return 0 or HS_EIO. */
int hs_attach__peek(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Write them (process_vm_writev: page protections apply). */
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
/* inject.c: ptrace, remote calls on x86-64 that survive heapsnap.     */

typedef struct hs_tracee {
	pid_t pid;                       /* the thread traced: the main thread */
	int attached;
	int dead;                        /* exited or killed: nothing to restore */
	struct user_regs_struct regs;    /* at the stop being worked from */
	/* Home: the state the thread continues from when heapsnap lets go.
	 * Every remote call returns there by itself (a signal frame). */
	struct user_regs_struct home;
	unsigned char *xstate;           /* home's FPU/SSE/AVX state (XSAVE layout) */
	size_t xstate_len;
	int use_fpregs;                  /* no NT_X86_XSTATE: legacy FXSAVE area only */
	uint64_t sigmask;                /* home's blocked signals */
	uint64_t restorer;               /* libc's `mov $15,%rax; syscall` (__restore_rt) */
	uint64_t gadget, slot;           /* heapsnap's page: store-rax-then-rt_sigreturn, and
	                                    where it stores; 0 until the page is executable */
	uint64_t frame_uc;               /* the frame of the call in flight (its ucontext) */
	int last_status;                 /* waitpid status of the current stop */
	double stopped_since, stopped_total;
} hs_tracee;

/* Size of heapsnap's capture gadget (hs_attach__write_gadget). */
#define HS_GADGET_SIZE 14u

/* How a remote call's value comes back. */
typedef struct hs_call {
	uint64_t fn;
	uint64_t args[6];
	int nargs;
	double timeout;     /* seconds; <= 0: no limit */
	long result_syscall; /* >= 0: the value is this system call's result (the
	                       call returns through libc's restorer, e.g. mmap
	                       before heapsnap's page exists); < 0: through the
	                       gadget (t->gadget must be set) */
	int abandon;        /* on timeout, send the thread home at once (only for
	                       calls that cannot have changed anything yet) */
} hs_call;

/* Seize and interrupt the main thread; wait for the stop. When
 * PTRACE_SEIZE itself fails, *seize_errno is its errno (for the caller to
 * explain) and nothing is set in hs_error_last(). Signals arriving meanwhile
 * are delivered, not held: heapsnap may die at any instant. */
int hs_attach__seize(hs_tracee *t, pid_t pid, double timeout, int *seize_errno);
/* PTRACE_CONT or PTRACE_SYSCALL with a signal to deliver (0: none). */
int hs_attach__resume(hs_tracee *t, int request, int sig);
/* Read the registers of the current stop into t->regs. */
int hs_attach__getregs(hs_tracee *t);
/* Make `home` the state the thread continues from: reads the extended
 * state and signal mask at the current stop (which must be the thread's own). */
int hs_attach__set_home(hs_tracee *t, const struct user_regs_struct *home);
/* The home for the stop of the first interrupt: a system call interrupted
 * by the stop is restarted (rewound) as the kernel would, or returns EINTR
 * where it would need the restart block (`eintr_futex`: a futex wait too). */
void hs_attach__home_after_interrupt(const struct user_regs_struct *r, int eintr_futex,
                                     struct user_regs_struct *home);
/* Find libc's rt_sigreturn trampoline in the executable mappings of `libc`. */
int hs_attach__find_restorer(pid_t pid, const hs_maps *maps, const char *libc, uint64_t *out);
/* The capture gadget's bytes, for heapsnap's page at `at`, storing into `slot`. */
void hs_attach__write_gadget(unsigned char *code, uint64_t at, uint64_t slot);
/*
 * Call `fn(args...)` in the stopped tracee from its home state: a signal
 * frame holding home is written below home's red zone, the function returns
 * into rt_sigreturn, which restores home. Signals arriving meanwhile are
 * delivered. On return the tracee is stopped at home (t->regs == home).
 * @return 0 (result in *ret), HS_EIO (the target died; the call crashed
 * and the thread was sent home; the call timed out: if c->abandon it was
 * sent home, else it runs on and returns home by itself, *running set).
 */
int hs_attach__call(hs_tracee *t, const hs_call *c, uint64_t *ret, int *running);
/* Stop a running tracee wherever it is (any ptrace stop) and detach. */
void hs_attach__let_go(hs_tracee *t);
void hs_attach__release(hs_tracee *t);

/* Wait for the next stop of the tracee: 0 stopped (*status), 1 timed out or
 * interrupted (hs_attach_interrupted()), HS_EIO when it died (t->dead set). */
int hs_attach__wait(hs_tracee *t, int *status, double deadline);
double hs_attach__now(void);

/* Fault injection for the tests: HEAPSNAP_TEST_FAULT="<point>:<n>:<signo>"
 * raises signo in heapsnap at the n-th pass through <point> (seized,
 * entered, returned, quiet, queued, kicked, stub, detach, fork-wait). */
void hs_attach__checkpoint(const char *point);

/* The syscall stop at hand (registers read into t->regs): 1 entry, 2 exit,
 * -1 error; *nr and *rval set either way. */
int hs_attach__syscall_stop(hs_tracee *t, uint64_t *nr, int64_t *rval);


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
/* The pid of a live process writing `path` (its temporary file's name
 * says), or 0: the child of a target that died after forking. */
int hs_attach__fork_writer(const char *path);

#endif
