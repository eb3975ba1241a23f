/*
 * attach/inject.c: ptrace on x86-64: seize and stop the main thread, save
 * and restore its registers (general and extended: a call clobbers SSE/AVX
 * registers the interrupted code may be using), call functions in it.
 *
 * A remote call: the general registers of the stop, the stack pointer moved
 * 1 KiB below the interrupted one (past the 128-byte red zone) and aligned,
 * a return address of 0 pushed, rip = the function, arguments in rdi...r9,
 * orig_rax = -1 so that a stop inside a system call does not restart it
 * under our call. The function returns into address 0 and faults; the
 * SIGSEGV stop is ours and is never delivered. Signals that arrive
 * meanwhile are held back and sent again after the detach.
 *
 * Only the main thread is traced: other threads run on (PTRACE_SEIZE
 * without PTRACE_O_EXITKILL, so if heapsnap dies the target lives on).
 */
#include <errno.h>
#include <elf.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach/attach_internal.h"
#include "util/alloc.h"

#define XSTATE_MAX 16384

double hs_attach__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void hold_signal(hs_tracee *t, int sig)
{
	for (int i = 0; i < t->nsigs; i++)
		if (t->sigs[i] == sig)
			return; /* standard signals coalesce anyway */
	if (t->nsigs < (int)(sizeof(t->sigs) / sizeof(t->sigs[0])))
		t->sigs[t->nsigs++] = sig;
}

int hs_attach__wait(hs_tracee *t, int *status, double deadline)
{
	int sleep_ns = 20000;
	for (;;) {
		pid_t r = waitpid(t->pid, status, __WALL | WNOHANG);
		if (r == t->pid) {
			if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
				t->dead = 1;
				t->attached = 0;
				return hs_error_set(HS_EIO, "process %d died during the dump (%s %d)", (int)t->pid,
				                    WIFEXITED(*status) ? "exit status" : "signal",
				                    WIFEXITED(*status) ? WEXITSTATUS(*status) : WTERMSIG(*status));
			}
			t->stopped_since = hs_attach__now();
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			t->dead = 1;
			t->attached = 0;
			return hs_error_set(HS_EIO, "lost process %d: %s", (int)t->pid, strerror(errno));
		}
		if (deadline > 0 && hs_attach__now() > deadline)
			return 1;
		struct timespec ts = { 0, sleep_ns };
		nanosleep(&ts, NULL);
		if (sleep_ns < 2000000)
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
			/* it never stopped (a D-state process): give up without a trace */
			ptrace(PTRACE_DETACH, pid, NULL, NULL);
			t->attached = 0;
			return hs_error_set(HS_EIO, "process %d did not stop within %.0f s (in an "
			                    "uninterruptible wait?); nothing was changed", (int)pid, timeout);
		}
		if (WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP)
			return 0; /* our interrupt (or a group stop: stopped all the same) */
		if (WIFSTOPPED(st)) {
			/* a signal on its way in: hold it back, wait for our stop */
			hold_signal(t, WSTOPSIG(st));
			if ((rc = hs_attach__resume(t, PTRACE_CONT, 0)) < 0)
				return rc;
		}
	}
}

int hs_attach__save(hs_tracee *t)
{
	if (ptrace(PTRACE_GETREGS, t->pid, NULL, &t->regs) != 0)
		return hs_error_set(HS_EIO, "cannot read the registers of process %d: %s", (int)t->pid,
		                    strerror(errno));
	if (!t->xstate) {
		t->xstate = hs_malloc(XSTATE_MAX);
		if (!t->xstate)
			return HS_ENOMEM;
	}
	struct iovec iov = { t->xstate, XSTATE_MAX };
	if (ptrace(PTRACE_GETREGSET, t->pid, (void *)(uintptr_t)NT_X86_XSTATE, &iov) == 0) {
		t->xstate_len = iov.iov_len;
		t->use_fpregs = 0;
		return 0;
	}
	if (ptrace(PTRACE_GETFPREGS, t->pid, NULL, t->xstate) != 0)
		return hs_error_set(HS_EIO, "cannot read the FPU state of process %d: %s", (int)t->pid,
		                    strerror(errno));
	t->use_fpregs = 1;
	t->xstate_len = sizeof(struct user_fpregs_struct);
	return 0;
}

int hs_attach__restore(hs_tracee *t, const struct user_regs_struct *regs)
{
	int rc = 0;
	if (t->xstate_len) {
		struct iovec iov = { t->xstate, t->xstate_len };
		if (t->use_fpregs ? ptrace(PTRACE_SETFPREGS, t->pid, NULL, t->xstate)
		                  : ptrace(PTRACE_SETREGSET, t->pid, (void *)(uintptr_t)NT_X86_XSTATE, &iov))
			rc = hs_error_set(HS_EIO, "cannot restore the FPU state of process %d: %s",
			                  (int)t->pid, strerror(errno));
	}
	if (ptrace(PTRACE_SETREGS, t->pid, NULL, regs ? regs : &t->regs) != 0)
		rc = hs_error_set(HS_EIO, "cannot restore the registers of process %d: %s", (int)t->pid,
		                  strerror(errno));
	return rc;
}

int hs_attach__call(hs_tracee *t, uint64_t fn, const uint64_t *args, int nargs, uint64_t *ret,
                    double timeout)
{
	struct user_regs_struct r = t->regs;
	uint64_t sp = ((uint64_t)r.rsp - 1024) & ~(uint64_t)15;
	sp -= 8; /* at entry rsp % 16 == 8, as after a call */
	uint64_t zero = 0;
	int rc = hs_attach__poke(t->pid, sp, &zero, sizeof(zero));
	if (rc < 0)
		return rc;
	r.rsp = sp;
	r.rip = fn;
	r.rax = 0;
	r.orig_rax = (unsigned long long)-1;
	r.eflags &= ~(unsigned long long)0x400; /* DF clear, as the ABI requires */
	unsigned long long *regs[6] = { &r.rdi, &r.rsi, &r.rdx, &r.rcx, &r.r8, &r.r9 };
	for (int i = 0; i < nargs && i < 6; i++)
		*regs[i] = args[i];
	if (ptrace(PTRACE_SETREGS, t->pid, NULL, &r) != 0)
		return hs_error_set(HS_EIO, "cannot set the registers of process %d: %s", (int)t->pid,
		                    strerror(errno));
	if ((rc = hs_attach__resume(t, PTRACE_CONT, 0)) < 0)
		return rc;
	double deadline = timeout > 0 ? hs_attach__now() + timeout : 0;
	for (;;) {
		int st;
		rc = hs_attach__wait(t, &st, deadline);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			/* stop it where it is; the caller restores the saved registers */
			ptrace(PTRACE_INTERRUPT, t->pid, NULL, NULL);
			while ((rc = hs_attach__wait(t, &st, 0)) == 0) {
				if ((st >> 16) == PTRACE_EVENT_STOP)
					break;
				if (WSTOPSIG(st) != SIGSEGV)
					hold_signal(t, WSTOPSIG(st));
				if ((rc = hs_attach__resume(t, PTRACE_CONT, 0)) < 0)
					return rc;
			}
			if (rc < 0)
				return rc;
			return hs_error_set(HS_EIO, "a call in process %d did not return in %.1f s",
			                    (int)t->pid, timeout);
		}
		if ((st >> 16) == PTRACE_EVENT_STOP) {
			if ((rc = hs_attach__resume(t, PTRACE_CONT, 0)) < 0)
				return rc;
			continue;
		}
		int sig = WSTOPSIG(st);
		if (sig == SIGSEGV) {
			struct user_regs_struct out;
			if (ptrace(PTRACE_GETREGS, t->pid, NULL, &out) != 0)
				return hs_error_set(HS_EIO, "cannot read the registers of process %d: %s",
				                    (int)t->pid, strerror(errno));
			if (out.rip == 0) {
				*ret = out.rax;
				return 0;
			}
			return hs_error_set(HS_EIO, "a call in process %d crashed at 0x%llx",
			                    (int)t->pid, (unsigned long long)out.rip);
		}
		hold_signal(t, sig);
		if ((rc = hs_attach__resume(t, PTRACE_CONT, 0)) < 0)
			return rc;
	}
}

int hs_attach__detach(hs_tracee *t)
{
	if (!t->attached)
		return 0;
	note_resume(t);
	int rc = 0;
	if (ptrace(PTRACE_DETACH, t->pid, NULL, NULL) != 0 && errno != ESRCH)
		rc = hs_error_set(HS_EIO, "cannot detach from process %d: %s", (int)t->pid, strerror(errno));
	t->attached = 0;
	for (int i = 0; i < t->nsigs; i++)
		syscall(SYS_tgkill, (int)t->pid, (int)t->pid, t->sigs[i]);
	t->nsigs = 0;
	return rc;
}

void hs_attach__release(hs_tracee *t)
{
	hs_free(t->xstate);
	t->xstate = NULL;
}
