/*
 * attach/inject.c: ptrace on x86-64: seize and stop the main thread, call
 * functions in it, in a way that survives heapsnap's own death.
 *
 * The rule: whenever heapsnap has changed the thread's registers, the
 * thread runs code that puts every register back by itself and continues
 * where it was. So if heapsnap is killed at any instant (SIGKILL, an OOM
 * kill, a crash), the kernel detaches and the target runs on unharmed.
 *
 * A remote call is entered with a single PTRACE_SETREGS. Before it, a
 * signal frame (what the kernel pushes for a signal handler: a ucontext
 * with all general registers, flags, the signal mask and an XSAVE area with
 * the FPU/SSE/AVX state) holding the thread's *home* state is written below
 * the red zone of home's stack, and the function's return address is a
 * two-instruction trampoline `mov $15, %rax; syscall` (rt_sigreturn): libc's
 * own __restore_rt (found by its bytes), or heapsnap's gadget in its own
 * page, which first stores the return value there. When the function
 * returns, the kernel restores every register from the frame exactly as
 * after a signal handler, and the thread is home. heapsnap reads the value
 * at the rt_sigreturn stop (or, through libc's trampoline, at the exit of
 * the one system call the function makes: mmap, mprotect, munmap). Nothing
 * of the target's own text is ever written; heapsnap writes only the stack
 * below the red zone (as a signal would) and its own page.
 *
 * Signals sent to the target meanwhile are delivered at once (a handler
 * runs on top of the call as it would on top of any code): none are held
 * back, so none can be lost with heapsnap.
 *
 * Only the main thread is traced: other threads run on (PTRACE_SEIZE
 * without PTRACE_O_EXITKILL, so if heapsnap dies the target lives on).
 */
#include <errno.h>
#include <elf.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach_internal.h"
#include "util/alloc.h"

#define XSTATE_MAX 16384
#define RED_ZONE 128
#define FP_XSTATE_MAGIC1_ 0x46505853u
#define FP_XSTATE_MAGIC2_ 0x46505845u
#define SW_BYTES_OFF 464 /* struct _fpx_sw_bytes in the FXSAVE area */
#define UC_FP_XSTATE_ 0x1
#define UC_SIGCONTEXT_SS_ 0x2
#define UC_STRICT_RESTORE_SS_ 0x4
#define ERESTARTSYS_ 512
#define ERESTARTNOINTR_ 513
#define ERESTARTNOHAND_ 514
#define ERESTART_RESTARTBLOCK_ 516
#define SYSCALL_INFO_ENTRY 1
#define SYSCALL_INFO_EXIT 2

/* libc's __restore_rt: mov $0xf, %rax; syscall */
static const unsigned char restorer_bytes[9] = { 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05 };

/* struct ptrace_syscall_info of <linux/ptrace.h>, which clashes with glibc's */
typedef struct syscall_info {
	uint8_t op;
	uint8_t pad[3];
	uint32_t arch;
	uint64_t ip, sp;
	union {
		struct {
			uint64_t nr;
			uint64_t args[6];
		} entry;
		struct {
			int64_t rval;
			uint8_t is_error;
		} exit;
	} u;
} syscall_info;

static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
	if (!caught_signal)
		caught_signal = sig;
}

void hs_attach_catch_signals(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT };
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;
		/* an ignored signal stays ignored (nohup) */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

int hs_attach_interrupted(void)
{
	return caught_signal;
}

void hs_attach__checkpoint(const char *point)
{
	static const char *spec;
	static int parsed;
	static char name[32];
	static long nth;
	static int sig;
	static _Atomic long passes;
	if (!parsed) {
		parsed = 1;
		spec = getenv("HEAPSNAP_TEST_FAULT");
		if (spec && sscanf(spec, "%31[a-z-]:%ld:%d", name, &nth, &sig) != 3)
			spec = NULL;
	}
	if (!spec || strcmp(point, name))
		return;
	if (++passes == nth)
		raise(sig);
}

double hs_attach__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int hs_attach__wait(hs_tracee *t, int *status, double deadline)
{
	int sleep_ns = 20000;
	for (;;) {
		/* no deadline: block (a caught signal interrupts: no SA_RESTART),
		 * so that each stop of a long call is answered at once */
		pid_t r = waitpid(t->pid, status, __WALL | (deadline > 0 || caught_signal ? WNOHANG : 0));
		if (r == t->pid) {
			if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
				t->dead = 1;
				t->attached = 0;
				return hs_error_set(HS_EIO, "process %d died during the dump (%s %d)", (int)t->pid,
				                    WIFEXITED(*status) ? "exit status" : "signal",
				                    WIFEXITED(*status) ? WEXITSTATUS(*status) : WTERMSIG(*status));
			}
			t->stopped_since = hs_attach__now();
			t->last_status = *status;
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			t->dead = 1;
			t->attached = 0;
			return hs_error_set(HS_EIO, "lost process %d: %s", (int)t->pid, strerror(errno));
		}
		if (caught_signal)
			return 1;
		if (deadline > 0 && hs_attach__now() > deadline)
			return 1;
		struct timespec ts = { 0, sleep_ns };
		nanosleep(&ts, NULL);
		if (sleep_ns < 500000) /* a stop waits for us: keep the latency low */
			sleep_ns *= 2;
	}
}

static void note_resume(hs_tracee *t)
{
	if (t->stopped_since > 0)
		t->stopped_total += hs_attach__now() - t->stopped_since;
	t->stopped_since = 0;
}

int hs_attach__resume(hs_tracee *t, int request, int sig)
{
	note_resume(t);
	if (ptrace((enum __ptrace_request)request, t->pid, NULL, (void *)(intptr_t)sig) != 0)
		return hs_error_set(HS_EIO, "cannot resume process %d: %s", (int)t->pid, strerror(errno));
	return 0;
}

int hs_attach__getregs(hs_tracee *t)
{
	if (ptrace(PTRACE_GETREGS, t->pid, NULL, &t->regs) != 0)
		return hs_error_set(HS_EIO, "cannot read the registers of process %d: %s", (int)t->pid,
		                    strerror(errno));
	return 0;
}

static int setregs(hs_tracee *t, const struct user_regs_struct *r)
{
	if (ptrace(PTRACE_SETREGS, t->pid, NULL, r) != 0)
		return hs_error_set(HS_EIO, "cannot set the registers of process %d: %s", (int)t->pid,
		                    strerror(errno));
	return 0;
}

int hs_attach__syscall_stop(hs_tracee *t, uint64_t *nr, int64_t *rval)
{
	if (hs_attach__getregs(t) < 0)
		return -1;
	syscall_info si;
	memset(&si, 0, sizeof(si));
	if (ptrace((enum __ptrace_request)PTRACE_GET_SYSCALL_INFO, t->pid, (void *)sizeof(si), &si) > 0 &&
	    (si.op == SYSCALL_INFO_ENTRY || si.op == SYSCALL_INFO_EXIT)) {
		*nr = si.op == SYSCALL_INFO_ENTRY ? si.u.entry.nr : t->regs.orig_rax;
		*rval = si.op == SYSCALL_INFO_EXIT ? si.u.exit.rval : (int64_t)t->regs.rax;
		return si.op == SYSCALL_INFO_ENTRY ? 1 : 2;
	}
	/* no PTRACE_GET_SYSCALL_INFO (Linux < 5.3): rax is -ENOSYS at entry */
	*nr = t->regs.orig_rax;
	*rval = (int64_t)t->regs.rax;
	return (long long)t->regs.rax == -ENOSYS ? 1 : 2;
}

int hs_attach__seize(hs_tracee *t, pid_t pid, double timeout, int *seize_errno)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	*seize_errno = 0;
	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)(uintptr_t)PTRACE_O_TRACESYSGOOD) != 0) {
		*seize_errno = errno; /* the caller explains EPERM */
		return HS_EIO;
	}
	t->attached = 1;
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) != 0) {
		int e = errno;
		ptrace(PTRACE_DETACH, pid, NULL, NULL);
		t->attached = 0;
		return hs_error_set(HS_EIO, "cannot stop process %d: %s", (int)pid, strerror(e));
	}
	double deadline = hs_attach__now() + (timeout > 0 ? timeout : 10);
	for (;;) {
		int st;
		int rc = hs_attach__wait(t, &st, deadline);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			/* never stopped (a D-state process), or heapsnap was told to
			 * stop: nothing was changed, let go */
			hs_attach__let_go(t);
			if (caught_signal)
				return hs_error_set(HS_EUSER, "interrupted by signal %d; process %d was not "
				                    "changed", (int)caught_signal, (int)pid);
			return hs_error_set(HS_EIO, "process %d did not stop within %.0f s (in an "
			                    "uninterruptible wait?); nothing was changed", (int)pid, timeout);
		}
		if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP)
			return hs_attach__getregs(t); /* our interrupt (or a group stop) */
		if (WIFSTOPPED(st)) {
			/* a signal on its way in: deliver it, wait for our stop */
			if ((rc = hs_attach__resume(t, PTRACE_CONT, WSTOPSIG(st))) < 0)
				return rc;
		}
	}
}

void hs_attach__home_after_interrupt(const struct user_regs_struct *r, int eintr_futex,
                                     struct user_regs_struct *home)
{
	*home = *r;
	home->orig_rax = (unsigned long long)-1;
	if ((long long)r->orig_rax < 0)
		return;
	long long rax = (long long)r->rax;
	int futex = r->orig_rax == SYS_futex;
	if (rax == -ERESTARTSYS_ || rax == -ERESTARTNOINTR_ || rax == -ERESTARTNOHAND_) {
		if (futex && eintr_futex && rax != -ERESTARTNOINTR_) {
			home->rax = (unsigned long long)-EINTR;
		} else {
			/* what the kernel does when no handler runs: again from the top */
			home->rax = r->orig_rax;
			home->rip -= 2;
		}
	} else if (rax == -ERESTART_RESTARTBLOCK_) {
		/* rt_sigreturn resets the restart block: the call returns EINTR, as
		 * when a signal handler ran (nanosleep, poll: callers retry) */
		home->rax = (unsigned long long)-EINTR;
	}
}

int hs_attach__set_home(hs_tracee *t, const struct user_regs_struct *home)
{
	t->home = *home;
	t->home.orig_rax = (unsigned long long)-1;
	if (!t->xstate) {
		t->xstate = hs_malloc(XSTATE_MAX);
		if (!t->xstate)
			return HS_ENOMEM;
	}
	struct iovec iov = { t->xstate, XSTATE_MAX };
	if (ptrace(PTRACE_GETREGSET, t->pid, (void *)(uintptr_t)NT_X86_XSTATE, &iov) == 0) {
		t->xstate_len = iov.iov_len;
		t->use_fpregs = 0;
		if (t->xstate_len < 576) /* FXSAVE area + XSAVE header at least */
			return hs_error_set(HS_EIO, "process %d: unexpected extended register state "
			                    "(%zu bytes); nothing was changed", (int)t->pid, t->xstate_len);
	} else if (ptrace(PTRACE_GETFPREGS, t->pid, NULL, t->xstate) == 0) {
		t->use_fpregs = 1;
		t->xstate_len = sizeof(struct user_fpregs_struct);
	} else {
		return hs_error_set(HS_EIO, "cannot read the FPU state of process %d: %s", (int)t->pid,
		                    strerror(errno));
	}
	hs_proc_status st;
	int rc = hs_attach__status(&st, t->pid);
	if (rc < 0)
		return rc;
	t->sigmask = st.sigblk;
	return 0;
}

int hs_attach__find_restorer(pid_t pid, const hs_maps *maps, const char *libc, uint64_t *out)
{
	*out = 0;
	for (size_t i = 0; i < maps->n && !*out; i++) {
		const hs_map *m = &maps->v[i];
		if (!m->path || strcmp(m->path, libc) || m->perms[2] != 'x')
			continue;
		size_t len = (size_t)(m->end - m->start);
		if (len > (64u << 20))
			continue;
		unsigned char *text = hs_malloc(len);
		if (!text)
			return HS_ENOMEM;
		if (hs_attach__peek(pid, m->start, text, len) == 0) {
			for (size_t k = 0; k + sizeof(restorer_bytes) <= len; k++) {
				if (text[k] == 0x48 && !memcmp(text + k, restorer_bytes, sizeof(restorer_bytes))) {
					*out = m->start + k;
					break;
				}
			}
		}
		hs_free(text);
	}
	hs_error_clear();
	if (!*out)
		return hs_error_set(HS_EINVAL, "process %d: no signal-return trampoline in its C library "
		                    "('%s'): not a GNU C library heapsnap knows", (int)pid, libc);
	return 0;
}

void hs_attach__write_gadget(unsigned char *code, uint64_t at, uint64_t slot)
{
	/* mov %rax, slot(%rip); mov $15, %eax; syscall */
	int32_t disp = (int32_t)((int64_t)slot - (int64_t)(at + 7));
	code[0] = 0x48; code[1] = 0x89; code[2] = 0x05;
	memcpy(code + 3, &disp, 4);
	code[7] = 0xb8; code[8] = 0x0f; code[9] = 0; code[10] = 0; code[11] = 0;
	code[12] = 0x0f; code[13] = 0x05;
}

/*
 * The signal frame for home, below its red zone: [rsp] the return address
 * (the trampoline), then the ucontext (the kernel's rt_sigframe without its
 * siginfo, which rt_sigreturn does not read but bounds-checks: 128 bytes
 * are left for it), then the 64-byte aligned XSAVE area and its end magic.
 */
static int write_frame(hs_tracee *t, uint64_t ret_to, uint64_t *entry_sp)
{
	const struct user_regs_struct *h = &t->home;
	size_t xlen = t->use_fpregs ? 512 : t->xstate_len;
	uint64_t top = (uint64_t)h->rsp - RED_ZONE - 64;
	uint64_t fp = (top - (xlen + 4)) & ~(uint64_t)63;
	uint64_t uc = (fp - sizeof(ucontext_t) - 128) & ~(uint64_t)15;
	uint64_t sp = uc - 8; /* at a function's entry rsp % 16 == 8 */
	size_t len = (size_t)(top - sp);
	unsigned char *buf = hs_calloc(1, len);
	if (!buf)
		return HS_ENOMEM;
	memcpy(buf, &ret_to, 8);
	ucontext_t u;
	memset(&u, 0, sizeof(u));
	u.uc_flags = UC_SIGCONTEXT_SS_ | UC_STRICT_RESTORE_SS_ | (t->use_fpregs ? 0 : UC_FP_XSTATE_);
	/* an invalid mode: rt_sigreturn's sigaltstack() fails, and the error is
	 * ignored, so the thread's alternate stack is left as it is */
	u.uc_stack.ss_flags = 0x10;
	greg_t *g = u.uc_mcontext.gregs;
	g[REG_R8] = (greg_t)h->r8; g[REG_R9] = (greg_t)h->r9; g[REG_R10] = (greg_t)h->r10;
	g[REG_R11] = (greg_t)h->r11; g[REG_R12] = (greg_t)h->r12; g[REG_R13] = (greg_t)h->r13;
	g[REG_R14] = (greg_t)h->r14; g[REG_R15] = (greg_t)h->r15; g[REG_RDI] = (greg_t)h->rdi;
	g[REG_RSI] = (greg_t)h->rsi; g[REG_RBP] = (greg_t)h->rbp; g[REG_RBX] = (greg_t)h->rbx;
	g[REG_RDX] = (greg_t)h->rdx; g[REG_RAX] = (greg_t)h->rax; g[REG_RCX] = (greg_t)h->rcx;
	g[REG_RSP] = (greg_t)h->rsp; g[REG_RIP] = (greg_t)h->rip; g[REG_EFL] = (greg_t)h->eflags;
	/* cs | gs << 16 | fs << 32 | ss << 48 */
	g[REG_CSGSFS] = (greg_t)((h->cs & 0xffff) | (h->gs & 0xffff) << 16 | (h->fs & 0xffff) << 32 |
	                         (h->ss & 0xffff) << 48);
	u.uc_mcontext.fpregs = (fpregset_t)(uintptr_t)fp;
	memcpy(&u.uc_sigmask, &t->sigmask, 8);
	memcpy(buf + (uc - sp), &u, sizeof(u));
	memcpy(buf + (fp - sp), t->xstate, t->use_fpregs ? 512 : xlen);
	if (!t->use_fpregs) {
		/* ptrace puts XCR0 where a signal frame has its software bytes
		 * (struct _fpx_sw_bytes): describe the frame as the kernel would */
		unsigned char *x = buf + (fp - sp);
		uint64_t xcr0;
		memcpy(&xcr0, x + SW_BYTES_OFF, 8);
		uint32_t magic1 = FP_XSTATE_MAGIC1_, ext = (uint32_t)xlen + 4, size = (uint32_t)xlen;
		uint32_t magic2 = FP_XSTATE_MAGIC2_;
		memset(x + SW_BYTES_OFF, 0, 48);
		memcpy(x + SW_BYTES_OFF, &magic1, 4);
		memcpy(x + SW_BYTES_OFF + 4, &ext, 4);
		memcpy(x + SW_BYTES_OFF + 8, &xcr0, 8);
		memcpy(x + SW_BYTES_OFF + 16, &size, 4);
		memcpy(x + xlen, &magic2, 4);
	}
	int rc = hs_attach__poke(t->pid, sp, buf, len);
	hs_free(buf);
	if (rc < 0)
		return rc;
	t->frame_uc = uc;
	*entry_sp = sp;
	return 0;
}

/* Interrupt a running tracee; wait for any ptrace stop. @return 0 stopped. */
static int stop_anywhere(hs_tracee *t)
{
	if (ptrace(PTRACE_INTERRUPT, t->pid, NULL, NULL) != 0)
		return hs_error_set(HS_EIO, "cannot stop process %d: %s", (int)t->pid, strerror(errno));
	int st;
	double deadline = hs_attach__now() + 5;
	for (;;) {
		/* a signal to heapsnap does not cut this short: the stop is due */
		pid_t r = waitpid(t->pid, &st, __WALL | WNOHANG);
		if (r == t->pid) {
			if (WIFEXITED(st) || WIFSIGNALED(st)) {
				t->dead = 1;
				t->attached = 0;
				return hs_error_set(HS_EIO, "process %d died", (int)t->pid);
			}
			t->stopped_since = hs_attach__now();
			t->last_status = st;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return hs_error_set(HS_EIO, "lost process %d: %s", (int)t->pid, strerror(errno));
		if (hs_attach__now() > deadline)
			return hs_error_set(HS_EIO, "process %d did not stop", (int)t->pid);
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
}

/* From any stop inside a call: run rt_sigreturn on the call's frame now. */
static int send_home(hs_tracee *t)
{
	if (ptrace(PTRACE_GETREGS, t->pid, NULL, &t->regs) != 0)
		return hs_error_set(HS_EIO, "cannot read the registers of process %d: %s", (int)t->pid,
		                    strerror(errno));
	struct user_regs_struct r = t->regs;
	r.rip = t->restorer;
	r.rsp = t->frame_uc;
	r.orig_rax = (unsigned long long)-1; /* a system call entered is skipped */
	return setregs(t, &r);
}

/*
 * Run to the end of a call. `expect_ret`: the address after the trampoline's
 * syscall instruction, where the rt_sigreturn entry stop is seen.
 */
static int run_call(hs_tracee *t, const hs_call *c, uint64_t expect_ret, uint64_t *ret,
                    int *running)
{
	double deadline = c->timeout > 0 ? hs_attach__now() + c->timeout : 0;
	int returning = 0, abandoned = 0, have = 0, crashed = 0, sig = 0;
	unsigned long long crash_rip = 0;
	uint64_t last_nr = (uint64_t)-1, value = 0;
	for (;;) {
		int rc = hs_attach__resume(t, PTRACE_SYSCALL, sig);
		if (rc < 0)
			return rc;
		sig = 0;
		int st;
		rc = hs_attach__wait(t, &st, abandoned || returning ? 0 : deadline);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (caught_signal || !c->abandon) {
				/* the call goes on and returns home by itself */
				if (running)
					*running = 1;
				if (caught_signal)
					return hs_error_set(HS_EUSER, "interrupted by signal %d", (int)caught_signal);
				return hs_error_set(HS_EIO, "a call in process %d did not return in %.1f s; it "
				                    "runs on and returns by itself", (int)t->pid, c->timeout);
			}
			if ((rc = stop_anywhere(t)) < 0 || (rc = send_home(t)) < 0)
				return rc;
			abandoned = 1;
			continue;
		}
		if ((st >> 16) == PTRACE_EVENT_STOP)
			continue;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			uint64_t nr = (uint64_t)-1;
			int64_t rval = 0;
			int kind = hs_attach__syscall_stop(t, &nr, &rval);
			if (kind < 0)
				return HS_EIO;
			if (kind == 2 && returning)
				break; /* rt_sigreturn is done: the thread is home (t->regs) */
			if (kind == 1) {
				last_nr = nr;
				if (nr == SYS_rt_sigreturn) {
					/* ours, not a signal handler's return: the frame's rsp */
					if ((t->regs.rip == expect_ret || t->regs.rip == t->restorer + 9) &&
					    t->regs.rsp == t->frame_uc)
						returning = 1;
					if (returning && t->regs.rip == expect_ret && c->result_syscall < 0 &&
					    !abandoned) {
						if ((rc = hs_attach__peek(t->pid, t->slot, &value, 8)) < 0)
							return rc;
						have = 1;
					}
				}
			} else if (kind == 2 && c->result_syscall >= 0 && last_nr == (uint64_t)c->result_syscall &&
			           !have) {
				value = (uint64_t)rval;
				have = 1;
			}
			continue;
		}
		sig = WSTOPSIG(st);
		if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP) {
			siginfo_t si;
			if (ptrace(PTRACE_GETSIGINFO, t->pid, NULL, &si) == 0 && si.si_code > 0) {
				/* a fault in our call (or in rt_sigreturn: a frame the
				 * kernel refused): never delivered; the thread is put
				 * back home from here */
				if ((rc = hs_attach__getregs(t)) < 0)
					return rc;
				crash_rip = t->regs.rip;
				sig = 0;
				if (returning || crashed) {
					struct user_regs_struct h = t->home;
					int e = setregs(t, &h);
					if (e < 0)
						return e;
					if (!t->use_fpregs) {
						struct iovec iov = { t->xstate, t->xstate_len };
						ptrace(PTRACE_SETREGSET, t->pid, (void *)(uintptr_t)NT_X86_XSTATE, &iov);
					}
					return hs_error_set(HS_EIO, "a call in process %d could not return (fault at "
					                    "0x%llx); its registers were put back", (int)t->pid,
					                    crash_rip);
				}
				if ((rc = send_home(t)) < 0)
					return rc;
				crashed = 1;
			}
		}
	}
	if (crashed)
		return hs_error_set(HS_EIO, "a call in process %d crashed at 0x%llx; the thread was put "
		                    "back where it was", (int)t->pid, crash_rip);
	if (abandoned)
		return hs_error_set(HS_EIO, "a call in process %d did not return in %.1f s; the thread "
		                    "was put back where it was", (int)t->pid, c->timeout);
	if (!have)
		return hs_error_set(HS_EIO, "a call in process %d returned no value", (int)t->pid);
	*ret = value;
	return 0;
}

int hs_attach__call(hs_tracee *t, const hs_call *c, uint64_t *ret, int *running)
{
	if (running)
		*running = 0;
	if (caught_signal)
		return hs_error_set(HS_EUSER, "interrupted by signal %d", (int)caught_signal);
	uint64_t ret_to, expect;
	if (c->result_syscall >= 0) {
		ret_to = t->restorer;
		expect = t->restorer + 9;
	} else {
		if (!t->gadget)
			return hs_error_set(HS_EINVAL, "internal error: no return gadget");
		ret_to = t->gadget;
		expect = t->gadget + HS_GADGET_SIZE;
	}
	uint64_t sp;
	int rc = write_frame(t, ret_to, &sp);
	if (rc < 0)
		return rc;
	struct user_regs_struct r = t->home;
	r.rsp = sp;
	r.rip = c->fn;
	r.rax = 0;
	r.orig_rax = (unsigned long long)-1; /* a stop in a system call does not restart it */
	r.eflags &= ~(unsigned long long)0x500; /* DF clear (the ABI), TF clear */
	unsigned long long *regs[6] = { &r.rdi, &r.rsi, &r.rdx, &r.rcx, &r.r8, &r.r9 };
	for (int i = 0; i < c->nargs && i < 6; i++)
		*regs[i] = c->args[i];
	/* the one write that hands the thread to the call: atomic for the target */
	if ((rc = setregs(t, &r)) < 0)
		return rc;
	hs_attach__checkpoint("entered");
	rc = run_call(t, c, expect, ret, running);
	if (rc == 0)
		hs_attach__checkpoint("returned");
	return rc;
}

void hs_attach__let_go(hs_tracee *t)
{
	if (!t->attached || t->dead)
		return;
	int sig = 0;
	if (t->stopped_since <= 0) {
		if (stop_anywhere(t) < 0) {
			/* exiting detaches too; the thread runs its own code or a call
			 * that returns home by itself */
			t->attached = 0;
			return;
		}
	}
	/* a signal-delivery stop: hand the signal on with the detach */
	int st = t->last_status;
	if (WIFSTOPPED(st) && (st >> 16) == 0 && WSTOPSIG(st) != (SIGTRAP | 0x80))
		sig = WSTOPSIG(st);
	note_resume(t);
	ptrace(PTRACE_DETACH, t->pid, NULL, (void *)(intptr_t)sig);
	t->attached = 0;
}

void hs_attach__release(hs_tracee *t)
{
	hs_free(t->xstate);
	t->xstate = NULL;
}
