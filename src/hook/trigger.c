/*
 * hook/trigger.c: the agent's snapshot signal (heapsnap.agent.start(
 * signal=...)), a C handler that only writes one byte into a pipe.
 *
 * Why not signal.signal(): a Python-level handler runs in the main thread,
 * between bytecodes, so a main thread busy in a long C call (a numpy
 * operation, a blocking read in a C library) would delay the snapshot until
 * it returns, and the snapshot would then run inside whatever Python code
 * the main thread was executing. Here the handler (async-signal-safe: a
 * non-blocking write, errno kept) wakes the agent's snapshot thread, which
 * takes the GIL like any thread and dumps. SA_RESTART: system calls the
 * program was blocked in are restarted, not failed with EINTR.
 *
 * After os.fork() the child keeps the handler and points it at a pipe of
 * its own (_signal_set_fd). The previous disposition is saved once and put
 * back by _signal_restore.
 */
#include "hook_internal.h"
#include "stats_internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define HS_NSIG 65

static volatile sig_atomic_t trigger_fd = -1;
static struct sigaction saved[HS_NSIG];
static int installed[HS_NSIG];

static void on_signal(int sig)
{
	int e = errno;
	int fd = (int)trigger_fd;
	if (fd >= 0) {
		unsigned char b = (unsigned char)sig;
		ssize_t r = write(fd, &b, 1); /* a full pipe: a snapshot is pending anyway */
		(void)r;
	}
	errno = e;
}

/*
 * Only signals meant for users: USR1, USR2 and the real-time ones. A crash
 * signal (SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS) caught by a handler that
 * only writes a byte returns to the faulting instruction, which faults
 * again: the process spins instead of dumping core. Signals the terminal,
 * the shell and service managers send (INT, TERM, HUP, TSTP...) or the
 * kernel reports (PIPE, CHLD...) must keep their meaning. heapsnap.agent
 * (_agent_options.py) refuses them first with a better message; this is
 * the same rule again for anything calling _signal_install directly.
 */
static int check_signum(int sig)
{
	if (sig == SIGUSR1 || sig == SIGUSR2 || (sig >= SIGRTMIN && sig <= SIGRTMAX && sig < HS_NSIG))
		return 0;
	PyErr_Format(PyExc_ValueError, "heapsnap: signal %d is not one the agent may take: only "
	             "USR1, USR2 and real-time signals (%d to %d)", sig, (int)SIGRTMIN, (int)SIGRTMAX);
	return -1;
}

const char hs_hook__signal_install_doc[] =
"_signal_install(signum, fd)\n"
"\n"
"Install the agent's C handler for `signum`: each delivery writes the signal\n"
"number as one byte into `fd` (the non-blocking write end of a pipe). The\n"
"previous disposition is saved for _signal_restore.";

PyObject *hs_hook__signal_install(PyObject *self, PyObject *args)
{
	int sig, fd;
	(void)self;
	if (!PyArg_ParseTuple(args, "ii:_signal_install", &sig, &fd))
		return NULL;
	if (check_signum(sig) < 0)
		return NULL;
	struct sigaction sa, old, cur;
	/* a handler installed outside Python (a C library, faulthandler) is
	 * the program's: not replaced (Python-level handlers are refused by
	 * heapsnap.agent before this) */
	if (sigaction(sig, NULL, &cur) != 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler != SIG_DFL && cur.sa_handler != on_signal) {
		if (cur.sa_handler == SIG_IGN)
			PyErr_Format(PyExc_ValueError, "heapsnap: signal %d (%s) is ignored by this "
			             "program (SIG_IGN); choose another one", sig, strsignal(sig));
		else
			PyErr_Format(PyExc_ValueError, "heapsnap: signal %d (%s) already has a handler "
			             "in this program; choose another one", sig, strsignal(sig));
		return NULL;
	}
	if (cur.sa_flags & SA_SIGINFO) {
		PyErr_Format(PyExc_ValueError, "heapsnap: signal %d (%s) already has a handler in "
		             "this program; choose another one", sig, strsignal(sig));
		return NULL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	trigger_fd = fd;
	if (sigaction(sig, &sa, &old) != 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	if (!installed[sig]) {
		saved[sig] = old;
		installed[sig] = 1;
	}
	Py_RETURN_NONE;
}

const char hs_hook__signal_set_fd_doc[] =
"_signal_set_fd(fd)\n"
"\n"
"Point the handler at another pipe (-1: deliveries are dropped), e.g. in a\n"
"forked child.";

PyObject *hs_hook__signal_set_fd(PyObject *self, PyObject *args)
{
	int fd;
	(void)self;
	if (!PyArg_ParseTuple(args, "i:_signal_set_fd", &fd))
		return NULL;
	trigger_fd = fd;
	Py_RETURN_NONE;
}

const char hs_hook__signal_restore_doc[] =
"_signal_restore(signum) -> bool\n"
"\n"
"Put back the disposition _signal_install found; False when it was not\n"
"installed.";

PyObject *hs_hook__signal_restore(PyObject *self, PyObject *args)
{
	int sig;
	(void)self;
	if (!PyArg_ParseTuple(args, "i:_signal_restore", &sig))
		return NULL;
	if (check_signum(sig) < 0)
		return NULL;
	if (!installed[sig])
		Py_RETURN_FALSE;
	if (sigaction(sig, &saved[sig], NULL) != 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	installed[sig] = 0;
	int any = 0;
	for (int i = 1; i < HS_NSIG; i++)
		any |= installed[i];
	if (!any)
		trigger_fd = -1;
	Py_RETURN_TRUE;
}
