/*
 * attach/attach.c: hs_attach_dump(): a snapshot of a running CPython.
 *
 * Every remote call below goes through hs_attach__call (inject.c): it
 * returns the thread to its "home" state by itself, so heapsnap may die at
 * any instant without harming the target. The order of work:
 *
 *  1. Stop the main thread (PTRACE_INTERRUPT). Its home: where it was,
 *     with an interrupted system call set to restart (or to return EINTR
 *     where only the kernel's restart block could resume it).
 *  2. mmap heapsnap's 16 KiB (returning through libc's rt_sigreturn
 *     trampoline; the value is the mmap system call's), write the stub, the
 *     capture gadget, the shared block and strings, mprotect the code page
 *     r-x. From here calls return through the gadget, which stores the
 *     value in the page.
 *  3. A safe point:
 *     - Blocked in a system call (sleep, accept, select, read...) with its
 *       thread state detached (a remote PyGILState_Check() returns 0): it
 *       is inside a Py_BEGIN_ALLOW_THREADS region, where any other thread
 *       may take the GIL and run. heapsnap_attach_dump() is called from
 *       home: it takes the GIL with PyGILState_Ensure() as a thread of the
 *       process would, dumps, releases it; the thread then restarts its
 *       call. futex waits are excluded: one of them is the GIL's own wait.
 *     - Otherwise a stub is queued with Py_AddPendingCall(): the main thread
 *       runs it between two bytecodes with the GIL held. The stub checks a
 *       cancel flag and makes a getpid() system call with a magic argument
 *       that the injector, tracing system calls of that one thread,
 *       recognises. Home becomes "back from the stub with 0", and the hook
 *       is called from there. If the main thread waits for a lock with the
 *       GIL released (futex), the wait is interrupted (PTRACE_INTERRUPT)
 *       and made to return EINTR, as a signal would: CPython's lock
 *       acquire then runs pending calls and waits again. Untouched, the
 *       kernel restarts the wait: nothing depends on heapsnap being alive.
 *       A blocking call the thread enters after the queueing (a sleep
 *       that starts at once) and is still in after BLOCK_GRACE is
 *       interrupted and the dump is taken there in blocked mode, the
 *       queued stub cancelled (its pages stay mapped).
 *  4. munmap the pages (through libc's trampoline: the page goes away),
 *     detach.
 *
 * If heapsnap dies after queueing the stub, the stub only makes a harmless
 * getpid() and returns 0; if the timeout passes (or heapsnap is told to
 * stop) first, the cancel flag is set and the stub will return at once: its
 * pages (16 KiB) stay mapped, since the queued call still points there.
 */
#include <errno.h>
#include <glob.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "attach/attach_internal.h"
#include "heapsnap/agent.h"
#include "util/alloc.h"

#define STUB_MAGIC 0x6865617073686f74ull /* "heapshot" */
#define PAGES_SIZE 16384u
#define SHARED_OFF 4096u
#define GADGET_OFF 64u           /* in the code page, after the stub */
#define SLOT_OFF (STRINGS_OFF - 64u) /* the gadget's value, in a writable page */
#define STRINGS_OFF 12288u
#define ERESTARTSYS_ 512
#define ERESTARTNOINTR_ 513
#define ERESTARTNOHAND_ 514
#define ERESTART_RESTARTBLOCK_ 516

_Static_assert(SHARED_OFF + sizeof(hs_attach_shared) <= SLOT_OFF, "shared block too large");

typedef struct target {
	pid_t pid;
	int minor;
	uint32_t hexversion;
	char hook[HS_ATTACH_PATH_MAX];
	uint64_t dlopen_, dlsym_, dlerror_, mmap_, munmap_, mprotect_;
	uint64_t restorer; /* libc's rt_sigreturn trampoline */
	uint64_t add_pending, gil_check, is_initialized;
	uint64_t runtime, runtime_size; /* _PyRuntime: where the main GIL lives */
} target;

/* A blocking call entered after the stub was queued is left alone this
 * long (a short sleep or read returns by itself and the stub runs after
 * it), then interrupted and the dump taken in it (blocked mode). */
#define BLOCK_GRACE 1.0

/* System calls in which a thread with its GIL released may block; the GIL
 * can be taken on its behalf there. Not futex: the GIL's own wait is one. */
static int blocking_syscall(long nr)
{
	switch (nr) {
	case SYS_read: case SYS_write: case SYS_readv: case SYS_writev: case SYS_poll:
	case SYS_select: case SYS_pause: case SYS_nanosleep: case SYS_connect: case SYS_accept:
	case SYS_sendto: case SYS_recvfrom: case SYS_sendmsg: case SYS_recvmsg: case SYS_wait4:
	case SYS_rt_sigtimedwait: case SYS_rt_sigsuspend: case SYS_epoll_wait:
	case SYS_clock_nanosleep: case SYS_waitid: case SYS_pselect6: case SYS_ppoll:
	case SYS_epoll_pwait: case SYS_accept4: case SYS_recvmmsg: case SYS_sendmmsg:
	case SYS_flock:
		return 1;
	default:
		return 0;
	}
}

/*
 * A futex wait with the GIL released is a lock wait (threading.Lock,
 * multiprocessing's semaphores, queue.get, a 3.13 PyMutex parking) where
 * the GIL may be taken on the thread's behalf like in any blocking call,
 * unless it is the GIL's own wait: its mutex and condition variable live
 * in _PyRuntime for the main interpreter on 3.8-3.13 (ceval.gil, or
 * _main_interpreter._gil). Unknown _PyRuntime: every futex may be the GIL.
 */
static int gil_futex(const target *tg, uint64_t uaddr)
{
	if (!tg->runtime || !tg->runtime_size)
		return 1;
	return uaddr >= tg->runtime && uaddr < tg->runtime + tg->runtime_size;
}

/* A futex wait: the GIL's, a lock's (sem_clockwait), a mutex's... */
static int futex_wait_cmd(unsigned long long op)
{
	int cmd = (int)(op & ~(unsigned long long)(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME));
	return cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
}

static int is_restart(long long rax)
{
	return rax == -ERESTARTSYS_ || rax == -ERESTARTNOINTR_ || rax == -ERESTARTNOHAND_ ||
	       rax == -ERESTART_RESTARTBLOCK_;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* "3.X" from a file name "libpython3.X..." or "python3.X"; 0 if none. */
static int minor_from_name(const char *name)
{
	const char *p = strstr(name, "python3.");
	if (!p)
		return 0;
	p += 8;
	int m = 0, digits = 0;
	while (*p >= '0' && *p <= '9' && digits < 3) {
		m = m * 10 + (*p++ - '0');
		digits++;
	}
	return digits ? m : 0;
}

static int find_symbols(target *tg, const hs_maps *maps, const char *hook_dir, const char *pname)
{
	int rc = 0;
	hs_elf *py = NULL, *libc = NULL;
	const hs_map *pymap = NULL, *libcmap = NULL;
	for (size_t i = 0; i < maps->n; i++) {
		const char *p = maps->v[i].path;
		if (!p)
			continue;
		const char *b = base_name(p);
		if (!pymap && !strncmp(b, "libpython3.", 11) && strstr(b, ".so"))
			pymap = hs_attach__maps_first(maps, p);
		if (!libcmap && (!strcmp(b, "libc.so.6") || (!strncmp(b, "libc-2.", 7) && strstr(b, ".so"))))
			libcmap = hs_attach__maps_first(maps, p);
	}
	if (!pymap) {
		/* a statically linked interpreter exports its API itself */
		char exe[64], target_path[4096];
		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)tg->pid);
		ssize_t n = readlink(exe, target_path, sizeof(target_path) - 1);
		if (n > 0) {
			target_path[n] = '\0';
			pymap = hs_attach__maps_first(maps, target_path);
		}
	}
	if (pymap && hs_elf_open(&py, tg->pid, pymap) == 0) {
		tg->add_pending = hs_elf_sym(py, "Py_AddPendingCall");
		tg->gil_check = hs_elf_sym(py, "PyGILState_Check");
		tg->is_initialized = hs_elf_sym(py, "Py_IsInitialized");
		tg->runtime = hs_elf_sym_sized(py, "_PyRuntime", &tg->runtime_size);
	}
	if (!tg->add_pending || !tg->gil_check || !tg->is_initialized) {
		rc = hs_error_set(HS_EINVAL, "process %d ('%s') is not a Python process: no CPython "
		                  "interpreter among its mappings", (int)tg->pid, pname);
		goto done;
	}
	uint64_t pyver = hs_elf_sym(py, "Py_Version");
	uint32_t hex = 0;
	if (pyver && hs_attach__peek(tg->pid, pyver, &hex, sizeof(hex)) == 0 && (hex >> 24) == 3) {
		tg->hexversion = hex;
		tg->minor = (int)((hex >> 16) & 0xff);
	} else {
		tg->minor = minor_from_name(base_name(pymap->path));
	}
	if (!tg->minor) {
		rc = hs_error_set(HS_EVERSION, "cannot tell the Python version of process %d ('%s')",
		                  (int)tg->pid, pymap->path);
		goto done;
	}
	if (tg->minor < 8 || tg->minor > 13) {
		rc = hs_error_set(HS_EVERSION, "process %d runs Python 3.%d, which heapsnap does not "
		                  "support (3.8 to 3.13)", (int)tg->pid, tg->minor);
		goto done;
	}
	if (!libcmap || hs_elf_open(&libc, tg->pid, libcmap) < 0) {
		rc = hs_error_set(HS_EINVAL, "process %d has no GNU C library mapped: cannot load code "
		                  "into it", (int)tg->pid);
		goto done;
	}
	tg->dlopen_ = hs_elf_sym(libc, "dlopen");
	tg->dlsym_ = hs_elf_sym(libc, "dlsym");
	tg->dlerror_ = hs_elf_sym(libc, "dlerror");
	tg->mmap_ = hs_elf_sym(libc, "mmap");
	tg->munmap_ = hs_elf_sym(libc, "munmap");
	tg->mprotect_ = hs_elf_sym(libc, "mprotect");
	if (!tg->dlopen_ || !tg->dlsym_ || !tg->dlerror_ || !tg->mmap_ || !tg->munmap_ || !tg->mprotect_) {
		rc = hs_error_set(HS_EINVAL, "the C library of process %d ('%s') does not export dlopen "
		                  "(glibc 2.34 or later is needed)", (int)tg->pid, libcmap->path);
		goto done;
	}
	if ((rc = hs_attach__find_restorer(tg->pid, maps, libcmap->path, &tg->restorer)) < 0)
		goto done;
	int hn = snprintf(tg->hook, sizeof(tg->hook), "%s/_heapsnap.cpython-3%d-x86_64-linux-gnu.so",
	                  hook_dir, tg->minor);
	if (hn < 0 || hn >= HS_ATTACH_PATH_MAX - 64)
		rc = hs_error_set(HS_EINVAL, "the hook directory's path is too long: '%s'", hook_dir);
	else if (access(tg->hook, R_OK) != 0)
		rc = hs_error_set(HS_ENOTFOUND, "process %d runs Python 3.%d, but heapsnap has no hook "
		                  "built for it ('%s' is missing); build heapsnap with that interpreter "
		                  "(HEAPSNAP_PYTHONS)", (int)tg->pid, tg->minor, tg->hook);
done:
	hs_elf_free(py);
	hs_elf_free(libc);
	return rc;
}

static int explain_ptrace_error(pid_t pid, int err)
{
	if (err == ESRCH)
		return hs_error_set(HS_ENOTFOUND, "no such process: %d", (int)pid);
	if (err != EPERM)
		return hs_error_set(HS_EIO, "cannot attach to process %d: %s", (int)pid, strerror(err));
	hs_proc_status st;
	if (hs_attach__status(&st, pid) == 0 && st.tracer)
		return hs_error_set(HS_EIO, "process %d is already traced by process %d (another "
		                    "'heapsnap dump' or a debugger); try again when it is done",
		                    (int)pid, (int)st.tracer);
	int scope = -1;
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	if (f) {
		if (fscanf(f, "%d", &scope) != 1)
			scope = -1;
		fclose(f);
	}
	int has_cap = 0;
	f = fopen("/proc/self/status", "re");
	if (f) {
		char line[256];
		unsigned long long cap;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "CapEff: %llx", &cap) == 1)
				has_cap = (cap >> 19) & 1; /* CAP_SYS_PTRACE */
		fclose(f);
	}
	if (scope == 3)
		return hs_error_set(HS_EIO, "cannot attach to process %d: ptrace is disabled "
		                    "(kernel.yama.ptrace_scope=3, until reboot)", (int)pid);
	if (scope >= 1 && !has_cap)
		return hs_error_set(HS_EIO, "cannot attach to process %d: ptrace is restricted by "
		                    "kernel.yama.ptrace_scope=%d; run heapsnap as root, or run "
		                    "'sysctl kernel.yama.ptrace_scope=0'", (int)pid, scope);
	if (!has_cap && geteuid() == 0)
		return hs_error_set(HS_EIO, "cannot attach to process %d: root without CAP_SYS_PTRACE "
		                    "(a container?): add the capability, e.g. docker run "
		                    "--cap-add=SYS_PTRACE", (int)pid);
	return hs_error_set(HS_EIO, "cannot attach to process %d: operation not permitted (a "
	                    "setuid or non-dumpable process, or a seccomp policy forbidding ptrace)",
	                    (int)pid);
}

/* The safe-point stub: see the top of the file. */
static size_t write_stub(unsigned char *code, uint64_t flag_addr)
{
	size_t n = 0;
	code[n++] = 0x48; code[n++] = 0xb8; memcpy(code + n, &flag_addr, 8); n += 8; /* movabs rax */
	code[n++] = 0x8b; code[n++] = 0x00;                 /* mov eax, [rax] */
	code[n++] = 0x85; code[n++] = 0xc0;                 /* test eax, eax */
	code[n++] = 0x75; code[n++] = 0x11;                 /* jnz ret0 */
	code[n++] = 0xb8; code[n++] = SYS_getpid; code[n++] = 0; code[n++] = 0; code[n++] = 0;
	uint64_t magic = STUB_MAGIC;
	code[n++] = 0x48; code[n++] = 0xbf; memcpy(code + n, &magic, 8); n += 8; /* movabs rdi */
	code[n++] = 0x0f; code[n++] = 0x05;                 /* syscall */
	code[n++] = 0x31; code[n++] = 0xc0;                 /* ret0: xor eax, eax */
	code[n++] = 0xc3;                                   /* ret */
	return n; /* the syscall ends at offset 33 */
}
#define STUB_SYSCALL_END 33u

/* One remote call: its value through heapsnap's gadget (result_syscall < 0)
 * or as the result of the one system call a libc wrapper makes. */
static int remote(hs_tracee *t, uint64_t fn, const uint64_t *args, int nargs, double timeout,
                  long result_syscall, uint64_t *ret, int *running)
{
	hs_call c;
	memset(&c, 0, sizeof(c));
	c.fn = fn;
	for (int i = 0; i < nargs; i++)
		c.args[i] = args[i];
	c.nargs = nargs;
	c.timeout = timeout;
	c.result_syscall = result_syscall;
	return hs_attach__call(t, &c, ret, running);
}

static int call(hs_tracee *t, uint64_t fn, const uint64_t *args, int nargs, double timeout,
                uint64_t *ret, int *running)
{
	return remote(t, fn, args, nargs, timeout, -1, ret, running);
}

/* A libc wrapper of one system call, returning through libc's trampoline
 * (heapsnap's page is not executable yet, or is going away). */
static int call_syscall(hs_tracee *t, uint64_t fn, long nr, const uint64_t *args, int nargs,
                        uint64_t *ret, int *running)
{
	return remote(t, fn, args, nargs, 5, nr, ret, running);
}

/* Load the hook and run the dump from home. */
static int run_hook(hs_tracee *t, const target *tg, uint64_t pages, hs_attach_shared *sh,
                    int *running, int *dump_entered)
{
	uint64_t ret, args[2];
	args[0] = pages + STRINGS_OFF;
	args[1] = 2; /* RTLD_NOW */
	int rc = call(t, tg->dlopen_, args, 2, 60, &ret, running);
	if (rc < 0)
		return rc;
	if (!ret) {
		char msg[512] = "unknown error";
		uint64_t p;
		if (call(t, tg->dlerror_, NULL, 0, 5, &p, running) == 0 && p) {
			hs_attach__peek(t->pid, p, msg, sizeof(msg) - 1);
			msg[sizeof(msg) - 1] = '\0';
		}
		return hs_error_set(HS_EIO, "process %d cannot load '%s': %s", (int)t->pid, tg->hook, msg);
	}
	uint64_t handle = ret;
	args[0] = handle;
	args[1] = pages + STRINGS_OFF + HS_ATTACH_PATH_MAX - 64;
	if ((rc = call(t, tg->dlsym_, args, 2, 10, &ret, running)) < 0)
		return rc;
	if (!ret)
		return hs_error_set(HS_EIO, "'%s' has no heapsnap_attach_dump (an older build?)", tg->hook);
	args[0] = pages + SHARED_OFF;
	/* the dump itself: as long as it takes (the target's death ends it) */
	*dump_entered = 1;
	if ((rc = call(t, ret, args, 1, 0, &ret, running)) < 0)
		return rc;
	if ((rc = hs_attach__peek(t->pid, pages + SHARED_OFF, sh, sizeof(*sh))) < 0)
		return rc;
	sh->message[sizeof(sh->message) - 1] = '\0';
	if (sh->state != HS_ATTACH_STATE_DONE)
		return hs_error_set(HS_EIO, "process %d could not write the snapshot: %s", (int)t->pid,
		                    sh->message[0] ? sh->message : "the hook failed without a message");
	return 0;
}

static int unmap_pages(hs_tracee *t, const target *tg, uint64_t pages, int *running)
{
	uint64_t ret, args[2] = { pages, PAGES_SIZE };
	int rc = call_syscall(t, tg->munmap_, SYS_munmap, args, 2, &ret, running);
	if (rc == 0 && ret != 0)
		rc = hs_error_set(HS_EIO, "process %d could not unmap heapsnap's pages", (int)t->pid);
	return rc;
}

/* A number member of a JSON object, or `dflt`. */
static double json_num(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/*
 * The snapshot through the process's agent (connected, HELLO checked):
 * DUMP <path> [fork]. The dump takes as long as the heap needs, so the
 * reply is awaited without the safe-point timeout (an hour; the child's
 * watchdog and a margin in fork mode); a process that dies closes the
 * connection.
 */
static int dump_via_agent(hs_attach_result *out, hs_agent *ag, int pid, const char *path,
                          const hs_attach_options *opts, double t0)
{
	char cmd[HS_AGENT_LINE_MAX];
	int n = snprintf(cmd, sizeof(cmd), "DUMP %s%s", path, opts->fork ? " fork" : "");
	if (n < 0 || (size_t)n >= sizeof(cmd) || strchr(path, '\n') || strchr(path, '\r'))
		return hs_error_set(HS_EINVAL, "the output path is too long for the agent (or has a line "
		                    "break): '%s'", path);
	double fork_timeout = opts->fork_timeout > 0 ? opts->fork_timeout : 300;
	cJSON *j = NULL;
	struct timespec sent;
	clock_gettime(CLOCK_REALTIME, &sent);
	/* hs_agent_call checks every figure's type and range; the file it
	 * names is checked below: a reply alone proves nothing */
	int rc = hs_agent_call(ag, cmd, &j, opts->fork ? fork_timeout + 60 : 3600);
	if (rc < 0)
		goto done;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
		const char *msg = hs_agent_reply_error(j);
		int err = (int)json_num(j, "errno", 0);
		const char *why = err > 0 && !strstr(msg, strerror(err)) ? strerror(err) : NULL;
		if (why)
			rc = hs_error_set(HS_EIO, "the agent of process %d failed: %s (%s)", pid, msg, why);
		else
			rc = hs_error_set(HS_EIO, "the agent of process %d failed: %s", pid, msg);
		goto done;
	}
	if ((rc = hs_agent_check_dump(ag, j, path, (double)sent.tv_sec + (double)sent.tv_nsec * 1e-9)) < 0)
		goto done;
	if (out) {
		out->mode = HS_ATTACH_MODE_AGENT;
		out->objects = (uint64_t)json_num(j, "objects", 0);
		out->edges = (uint64_t)json_num(j, "edges", 0);
		out->bytes = (uint64_t)json_num(j, "bytes", 0);
		out->pause_seconds = json_num(j, "pause_seconds", 0);
		if (opts->fork) {
			out->child_pid = (int)json_num(j, "child_pid", 0);
			out->child_seconds = json_num(j, "child_seconds", 0);
			out->child_private_dirty = (long long)json_num(j, "child_private_dirty", -1);
		}
		snprintf(out->agent_socket, sizeof(out->agent_socket), "%s", hs_agent_socket(ag));
	}
done:
	cJSON_Delete(j);
	if (out) {
		out->via_agent = 1; /* also on failure: the agent was asked, nothing injected */
		cJSON *h = cJSON_Parse(hs_agent_hello(ag));
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, "python");
		int major = 0, minor = 0;
		if (cJSON_IsString(v) && sscanf(v->valuestring, "%d.%d", &major, &minor) == 2) {
			out->python_major = major;
			out->python_minor = minor;
		}
		out->python_hexversion = (uint32_t)json_num(h, "hexversion", 0);
		cJSON_Delete(h);
		out->seconds = hs_attach__now() - t0;
	}
	return rc;
}

/* System calls around which a stop is no quiet point: the thread leaves
 * them for code it did not come from, or never comes back. */
static int special_syscall(uint64_t nr)
{
	switch (nr) {
	case SYS_rt_sigreturn: case SYS_exit: case SYS_exit_group: case SYS_execve:
	case SYS_execveat: case SYS_clone: case SYS_clone3: case SYS_fork: case SYS_vfork:
	case SYS_restart_syscall:
		return 1;
	default:
		return 0;
	}
}

/*
 * A quiet point for Py_AddPendingCall, which takes CPython's pending-call
 * lock: called from a stop inside that lock's few instructions it would
 * wait for its own thread. A thread at a system call's entry or exit is
 * never inside it (the lock's own futex wait does not hold it, its wake
 * comes after the release), so the thread runs on, traced, to its next
 * system call: a switch of the GIL, a lock, I/O, every few milliseconds in
 * most programs. After `wait` seconds with none (a single thread computing
 * without system calls: the only case left, see docs/architecture.md) it
 * is stopped wherever it is. *home: where to continue from there.
 * @return 1 a system call, 0 stopped elsewhere, < 0 error (HS_EUSER when
 * heapsnap was told to stop: the thread runs its own code).
 */
static int reach_quiet_point(hs_tracee *t, struct user_regs_struct *home, double wait)
{
	double deadline = hs_attach__now() + wait;
	int sig = 0, interrupted = 0, resume = 1, rc;
	for (;;) {
		if (resume && (rc = hs_attach__resume(t, PTRACE_SYSCALL, sig)) < 0)
			return rc;
		resume = 1;
		sig = 0;
		int ws;
		rc = hs_attach__wait(t, &ws, interrupted ? 0 : deadline);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (hs_attach_interrupted())
				return hs_error_set(HS_EUSER, "interrupted by signal %d",
				                    hs_attach_interrupted());
			if (ptrace(PTRACE_INTERRUPT, t->pid, NULL, NULL) != 0)
				return hs_error_set(HS_EIO, "cannot stop process %d: %s", (int)t->pid,
				                    strerror(errno));
			interrupted = 1;
			resume = 0;
			continue;
		}
		if ((ws >> 16) == PTRACE_EVENT_STOP) {
			if (!interrupted)
				continue;
			if ((rc = hs_attach__getregs(t)) < 0)
				return rc;
			hs_attach__home_after_interrupt(&t->regs, 0, home);
			return 0;
		}
		if (WSTOPSIG(ws) != (SIGTRAP | 0x80)) {
			sig = WSTOPSIG(ws); /* the target's own signal: deliver it */
			continue;
		}
		uint64_t nr = (uint64_t)-1;
		int64_t rval;
		int kind = hs_attach__syscall_stop(t, &nr, &rval);
		if (kind < 0)
			return HS_EIO;
		if ((long long)t->regs.orig_rax < 0 || special_syscall(t->regs.orig_rax))
			continue;
		if (kind == 1) {
			/* before the call: make it again from the top when home */
			*home = t->regs;
			home->rip -= 2;
			home->rax = t->regs.orig_rax;
			home->orig_rax = (unsigned long long)-1;
		} else {
			hs_attach__home_after_interrupt(&t->regs, 0, home);
		}
		return 1;
	}
}

/*
 * heapsnap was told to stop during a fork-mode dump: the target's forked
 * child may be walking. It is the target's child, not ours: it is killed
 * (after checking it is still that child), the target's reaper removes its
 * temporary files, and its status file is removed here. The shared block
 * is read from the detached target: the hook fills in the child's pid when
 * its dump() call returns, within the fork's time.
 */
static void stop_fork_child(int pid, uint64_t pages, int child, const char *path)
{
	for (int i = 0; child <= 0 && pages && i < 250; i++) {
		hs_attach_shared sh;
		if (hs_attach__peek(pid, pages + SHARED_OFF, &sh, sizeof(sh)) < 0)
			break;
		if (sh.state == HS_ATTACH_STATE_DONE || sh.state == HS_ATTACH_STATE_FAILED) {
			child = sh.child_pid;
			break;
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (child > 0) {
		char fn[64];
		snprintf(fn, sizeof(fn), "/proc/%d/stat", child);
		int ppid = hs_attach__parent_of(child);
		if (ppid == pid && kill(child, SIGKILL) == 0) {
			/* reaped by the target's reaper thread */
			for (int i = 0; i < 250 && access(fn, F_OK) == 0; i++) {
				struct timespec ts = { 0, 20 * 1000 * 1000 };
				nanosleep(&ts, NULL);
			}
		}
	}
	char status[HS_ATTACH_PATH_MAX + 32];
	snprintf(status, sizeof(status), "%s%s", path, HS_ATTACH_STATUS_SUFFIX);
	struct stat st;
	if (lstat(status, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid())
		unlink(status);
	hs_attach__remove_partial(path);
}

int hs_attach_dump(hs_attach_result *out, int pid, const char *path, const hs_attach_options *opts)
{
	hs_attach_options defaults = HS_ATTACH_OPTIONS_INIT;
	if (!opts)
		opts = &defaults;
	double timeout = opts->timeout > 0 ? opts->timeout : 10;
	double t0 = hs_attach__now();
	if (out)
		memset(out, 0, sizeof(*out));
	if (pid <= 0 || !path || path[0] != '/' || strlen(path) >= HS_ATTACH_PATH_MAX)
		return hs_error_set(HS_EINVAL, "hs_attach_dump: bad argument (pid %d, path %s)", pid,
		                    path ? path : "NULL");
	if (pid == getpid())
		return hs_error_set(HS_EINVAL, "process %d is heapsnap itself", pid);

	/* another user's process: neither its agent (which refuses other users)
	 * nor ptrace can be used; say so once, without suggesting either */
	hs_proc_status owner;
	if (hs_attach__status(&owner, (pid_t)pid) == 0 && geteuid() != 0 &&
	    (owner.ruid != geteuid() || owner.euid != geteuid()))
		return hs_error_set(HS_EIO, "process %d belongs to another user (uid %u); run heapsnap "
		                    "as that user (sudo -u '#%u' heapsnap dump %d ...), or as root", pid,
		                    (unsigned)owner.euid, (unsigned)owner.euid, pid);
	hs_error_clear();

	if (opts->agent != HS_ATTACH_AGENT_NEVER) {
		hs_agent *ag = NULL;
		int arc = hs_agent_connect(&ag, pid, timeout);
		if (arc == 0) {
			arc = dump_via_agent(out, ag, pid, path, opts, t0);
			hs_agent_free(ag);
			return arc;
		}
		if (arc != HS_ENOTFOUND || opts->agent == HS_ATTACH_AGENT_ONLY) {
			if (out) {
				out->seconds = hs_attach__now() - t0;
				out->via_agent = arc != HS_ENOTFOUND; /* an agent was there, and failed */
			}
			return arc;
		}
		hs_error_clear(); /* no agent: inject */
	}
	if (!opts->hook_dir || strlen(opts->hook_dir) > HS_ATTACH_PATH_MAX - 64)
		return hs_error_set(HS_EINVAL, "hs_attach_dump: bad argument (no hook directory)");

	hs_proc_status st;
	int rc = hs_attach__status(&st, pid);
	if (rc < 0)
		return rc;
	if (st.state == 'Z' || st.state == 'X')
		return hs_error_set(HS_ENOTFOUND, "process %d has exited (a zombie)", pid);
	if (geteuid() != 0 && (st.ruid != geteuid() || st.euid != geteuid()))
		return hs_error_set(HS_EIO, "process %d belongs to another user (uid %u); run heapsnap "
		                    "as that user, or as root", pid, (unsigned)st.euid);
	if (st.tracer)
		return hs_error_set(HS_EIO, "process %d is already traced by process %d (another "
		                    "'heapsnap dump' or a debugger); try again when it is done", pid,
		                    (int)st.tracer);
	/* a remote call returns through a signal frame the shadow stack does not
	 * vouch for: refused before anything is touched */
	if (st.shadow_stack)
		return hs_error_set(HS_EIO, "process %d runs with a CET shadow stack, which heapsnap's "
		                    "injection does not support; start it with heapsnap's agent "
		                    "(HEAPSNAP_AGENT=1) to take snapshots", pid);

	target tg;
	memset(&tg, 0, sizeof(tg));
	tg.pid = pid;
	hs_maps maps;
	if ((rc = hs_attach__maps_read(&maps, pid)) < 0)
		return rc;
	rc = find_symbols(&tg, &maps, opts->hook_dir, st.name);
	hs_attach__maps_release(&maps);
	if (rc < 0)
		return rc;

	hs_tracee t;
	hs_attach_shared *sh = hs_calloc(1, sizeof(*sh));
	unsigned char *buf = hs_calloc(1, PAGES_SIZE);
	uint64_t pages = 0, ret;
	int mode = 0, seize_errno = 0, running = 0, queued = 0, dump_entered = 0;
	if (!sh || !buf) {
		hs_free(sh);
		hs_free(buf);
		return HS_ENOMEM;
	}
	rc = hs_attach__seize(&t, pid, timeout, &seize_errno);
	if (seize_errno) {
		hs_free(sh);
		hs_free(buf);
		return explain_ptrace_error(pid, seize_errno);
	}
	if (rc < 0)
		goto out;
	t.restorer = tg.restorer;
	hs_attach__checkpoint("seized");
	struct user_regs_struct r0 = t.regs, home;
	hs_attach__home_after_interrupt(&r0, 0, &home);
	if ((rc = hs_attach__set_home(&t, &home)) < 0)
		goto let_go;

	/* heapsnap's pages: stub + gadget (code), shared block + slot, strings */
	uint64_t margs[6] = { 0, PAGES_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	                      (uint64_t)-1, 0 };
	if ((rc = call_syscall(&t, tg.mmap_, SYS_mmap, margs, 6, &ret, &running)) < 0)
		goto let_go;
	if (ret > (uint64_t)-4096 || ret == 0 || (ret & 4095)) {
		rc = hs_error_set(HS_EIO, "process %d cannot map memory for heapsnap", pid);
		goto let_go;
	}
	pages = ret;
	write_stub(buf, pages + SHARED_OFF + offsetof(hs_attach_shared, cancel));
	hs_attach__write_gadget(buf + GADGET_OFF, pages + GADGET_OFF, pages + SLOT_OFF);
	sh->magic = HS_ATTACH_MAGIC;
	sh->size = sizeof(*sh);
	snprintf(sh->path, sizeof(sh->path), "%s", path);
	if (opts->fork) {
		sh->flags = HS_ATTACH_FLAG_FORK;
		sh->fork_timeout = opts->fork_timeout > 0 ? opts->fork_timeout : 300;
	}
	memcpy(buf + SHARED_OFF, sh, sizeof(*sh));
	memcpy(buf + STRINGS_OFF, tg.hook, strlen(tg.hook) + 1); /* < PATH_MAX - 64: checked */
	strcpy((char *)buf + STRINGS_OFF + HS_ATTACH_PATH_MAX - 64, "heapsnap_attach_dump");
	if ((rc = hs_attach__poke(pid, pages, buf, PAGES_SIZE)) < 0)
		goto unmap;
	uint64_t pargs[3] = { pages, 4096, PROT_READ | PROT_EXEC };
	if ((rc = call_syscall(&t, tg.mprotect_, SYS_mprotect, pargs, 3, &ret, &running)) < 0)
		goto unmap;
	if (ret != 0) {
		rc = hs_error_set(HS_EIO, "process %d does not allow executable memory (mprotect "
		                  "failed: SELinux execmem?)", pid);
		goto unmap;
	}
	t.gadget = pages + GADGET_OFF;
	t.slot = pages + SLOT_OFF;

	if ((rc = call(&t, tg.is_initialized, NULL, 0, 5, &ret, &running)) < 0)
		goto unmap;
	if ((int)ret == 0) {
		rc = hs_error_set(HS_EIO, "process %d has no running Python interpreter (starting or "
		                  "shutting down)", pid);
		goto unmap;
	}

	long long nr = (long long)r0.orig_rax;
	/* stopped at the exit of a system call: one the kernel restarts, or one
	 * it never restarts and that the stop made fail with EINTR (epoll_wait,
	 * poll with a timeout...): CPython retries those (PEP 475) */
	int in_syscall = nr >= 0 && (is_restart((long long)r0.rax) || (long long)r0.rax == -EINTR);
	int detached = 0;
	if (in_syscall) {
		if ((rc = call(&t, tg.gil_check, NULL, 0, 5, &ret, &running)) < 0)
			goto unmap;
		detached = (int)ret == 0;
	}
	if (in_syscall && detached &&
	    (blocking_syscall((long)nr) || (nr == SYS_futex && !gil_futex(&tg, r0.rdi)))) {
		mode = HS_ATTACH_MODE_BLOCKED;
		rc = run_hook(&t, &tg, pages, sh, &running, &dump_entered);
		goto unmap;
	}

	/* pending-call mode: a lock wait with the GIL released returns EINTR
	 * (see the top), so that the lock's acquire runs pending calls */
	mode = HS_ATTACH_MODE_PENDING_CALL;
	if (in_syscall && detached && nr == SYS_futex) {
		hs_attach__home_after_interrupt(&r0, 1, &home);
		if ((rc = hs_attach__set_home(&t, &home)) < 0)
			goto unmap;
	} else if (!in_syscall) {
		double left = t0 + timeout - hs_attach__now();
		if ((rc = reach_quiet_point(&t, &home, left < 0.25 ? (left > 0 ? left : 0) : 0.25)) < 0)
			goto let_go; /* the thread runs its own code: no call in flight */
		hs_attach__checkpoint("quiet");
		if ((rc = hs_attach__set_home(&t, &home)) < 0)
			goto unmap;
	}
	{
		hs_call c;
		memset(&c, 0, sizeof(c));
		c.fn = tg.add_pending;
		c.args[0] = pages;
		c.nargs = 2;
		c.timeout = 5;
		c.result_syscall = -1;
		c.abandon = 1; /* stuck on CPython's pending-call lock: nothing done yet */
		if ((rc = hs_attach__call(&t, &c, &ret, &running)) < 0)
			goto unmap;
	}
	if ((int)ret != 0) {
		rc = hs_error_set(HS_EIO, "process %d refused the request (its pending-call queue is "
		                  "full); try again", pid);
		goto unmap;
	}
	queued = 1; /* from here the pages stay mapped unless the stub has run */
	hs_attach__checkpoint("queued");
	double deadline = t0 + timeout;
	int kicked = 0, blocked_kick = 0, gil_blocked = 0, in_block = 0;
	double block_until = 0;
	for (;;) {
		if ((rc = hs_attach__resume(&t, PTRACE_SYSCALL, 0)) < 0)
			goto cancel;
		int ws, sig = 0;
	wait_again:
		rc = hs_attach__wait(&t, &ws, in_block && block_until < deadline ? block_until : deadline);
		if (rc < 0)
			goto out;
		if (rc == 1 && in_block && !hs_attach_interrupted() && hs_attach__now() < deadline) {
			/* blocked for BLOCK_GRACE in a call entered after the
			 * queueing: interrupt it (see below) */
			in_block = 0;
			if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) != 0) {
				rc = hs_error_set(HS_EIO, "cannot stop process %d: %s", pid, strerror(errno));
				goto cancel;
			}
			blocked_kick = 1;
			goto wait_again;
		}
		if (rc == 1)
			goto cancel;
		in_block = 0;
		if ((ws >> 16) == PTRACE_EVENT_STOP)
			continue;
		if (WSTOPSIG(ws) != (SIGTRAP | 0x80)) {
			sig = WSTOPSIG(ws); /* the target's own signal: deliver it */
			if ((rc = hs_attach__resume(&t, PTRACE_SYSCALL, sig)) < 0)
				goto cancel;
			goto wait_again;
		}
		uint64_t snr = (uint64_t)-1;
		int64_t rval = 0;
		int kind = hs_attach__syscall_stop(&t, &snr, &rval);
		if (kind < 0) {
			rc = HS_EIO;
			goto cancel;
		}
		if (kind == 1 && snr == SYS_getpid && t.regs.rdi == STUB_MAGIC &&
		    t.regs.rip == pages + STUB_SYSCALL_END)
			break;
		if (kind == 1 && snr == SYS_futex && futex_wait_cmd(t.regs.rsi)) {
			/* let it enter the wait, then interrupt it (see the top) */
			if ((rc = hs_attach__resume(&t, PTRACE_SYSCALL, 0)) < 0)
				goto cancel;
			if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) != 0) {
				rc = hs_error_set(HS_EIO, "cannot stop process %d: %s", pid, strerror(errno));
				goto cancel;
			}
			kicked = 1;
			hs_attach__checkpoint("kicked");
			goto wait_again;
		}
		if (kind == 1 && !gil_blocked && blocking_syscall((long)snr)) {
			/* a call that may block: a short one returns by itself and
			 * the stub runs after it (its pages are then unmapped); one
			 * still blocked after BLOCK_GRACE is interrupted */
			if ((rc = hs_attach__resume(&t, PTRACE_SYSCALL, 0)) < 0)
				goto cancel;
			in_block = 1;
			block_until = hs_attach__now() + BLOCK_GRACE;
			goto wait_again;
		}
		if (kind == 2 && blocked_kick) {
			/* The thread entered a blocking call after the stub was
			 * queued (a sleep right after the queueing: the stub could
			 * wait as long as the call). Interrupted (a restart code or
			 * EINTR: this syscall-exit stop is the interrupt's), it is
			 * where a blocked thread is at the start: dump from here in
			 * blocked mode if its GIL is released, the queued stub
			 * cancelled (it returns at once when it runs; its pages stay
			 * mapped). Completed: on towards the stub. */
			blocked_kick = 0;
			if (!is_restart(rval) && rval != -EINTR)
				continue;
			struct user_regs_struct rb = t.regs, bhome;
			hs_attach__home_after_interrupt(&rb, 0, &bhome);
			if ((rc = hs_attach__set_home(&t, &bhome)) < 0)
				goto cancel;
			if ((rc = call(&t, tg.gil_check, NULL, 0, 5, &ret, &running)) < 0)
				goto cancel;
			if ((int)ret != 0) {
				gil_blocked = 1; /* the GIL held in a system call: wait on, no more kicks */
				continue;
			}
			int one = 1;
			if ((rc = hs_attach__poke(pid, pages + SHARED_OFF + offsetof(hs_attach_shared, cancel),
			                          &one, 4)) < 0)
				goto cancel;
			hs_attach__checkpoint("blocked-late");
			mode = HS_ATTACH_MODE_BLOCKED;
			rc = run_hook(&t, &tg, pages, sh, &running, &dump_entered);
			goto unmap; /* queued: the pages stay mapped for the cancelled stub */
		}
		if (kind == 2 && kicked) {
			kicked = 0;
			if (is_restart(rval)) {
				struct user_regs_struct eintr = t.regs;
				eintr.rax = (unsigned long long)-EINTR;
				if (ptrace(PTRACE_SETREGS, pid, NULL, &eintr) != 0) {
					rc = hs_error_set(HS_EIO, "cannot set the registers of process %d: %s",
					                  pid, strerror(errno));
					goto cancel;
				}
			}
		}
	}
	/* At the safe point: the main thread, GIL held, between bytecodes, at
	 * the entry of the stub's getpid(). Home: back from the stub with 0. */
	hs_attach__checkpoint("stub");
	{
		struct user_regs_struct back = t.regs;
		uint64_t ra = 0;
		if ((rc = hs_attach__peek(pid, t.regs.rsp, &ra, 8)) < 0)
			goto cancel; /* the stub returns by itself */
		back.rip = ra;
		back.rsp += 8;
		back.rax = 0;
		if ((rc = hs_attach__set_home(&t, &back)) < 0)
			goto cancel;
	}
	queued = 0;
	rc = run_hook(&t, &tg, pages, sh, &running, &dump_entered);
	goto unmap;

cancel:
	if (!t.dead && t.attached) {
		int one = 1;
		hs_attach__poke(pid, pages + SHARED_OFF + offsetof(hs_attach_shared, cancel), &one, 4);
	}
	if (rc >= 0 && !hs_attach_interrupted())
		rc = hs_error_set(HS_EIO, "process %d did not reach a safe point within %.3g s (its main "
		                  "thread runs outside Python bytecode: a long C call, or a system call "
		                  "with the GIL held); nothing was written, and it runs on unchanged (a "
		                  "cancelled 16 KiB stub stays mapped)", pid, timeout);
	goto let_go;

unmap:
	/* the thread is home (or a call runs on and will return there) */
	if (pages && !t.dead && !running && !queued && !hs_attach_interrupted()) {
		int e = unmap_pages(&t, &tg, pages, &running);
		if (rc == 0 && e < 0)
			rc = e;
	}
let_go:
	/* from any stop, or running: a signal-delivery stop hands its signal on */
	hs_attach__checkpoint("detach");
	if (!t.dead && t.attached)
		hs_attach__let_go(&t);
	if (hs_attach_interrupted() && !t.dead && !opts->fork) {
		if (rc == 0 && sh->state == HS_ATTACH_STATE_DONE) {
			rc = hs_error_set(HS_EUSER, "interrupted by signal %d after '%s' was written "
			                  "(complete); let go of process %d, which runs on where it was",
			                  hs_attach_interrupted(), path, pid);
		} else {
			hs_attach__remove_partial(path);
			rc = hs_error_set(HS_EUSER, "interrupted by signal %d: let go of process %d, which "
			                  "runs on where it was%s; no snapshot was written",
			                  hs_attach_interrupted(), pid, running ? " (the call in progress "
			                  "returns by itself)" : "");
		}
	}
out:
	if (t.dead && opts->fork && sh && sh->state != HS_ATTACH_STATE_DONE && dump_entered)
		sh->child_pid = hs_attach__fork_writer(path); /* it died in dump(): forked yet? */
	if (t.dead && opts->fork && sh && sh->child_pid > 0) {
		/* it died after forking: the child holds its copy and finishes */
		hs_error_clear();
		rc = 0;
	} else if (t.dead) {
		hs_attach__remove_partial(path);
		rc = hs_error_set(HS_EIO, "process %d died during the dump; no snapshot was written", pid);
	}
	hs_fork_status fs;
	memset(&fs, 0, sizeof(fs));
	fs.private_dirty = -1;
	if (rc == 0 && opts->fork && sh)
		hs_attach__checkpoint("fork-wait");
	if (rc == 0 && opts->fork && sh)
		rc = hs_attach__wait_fork_child(&fs, pid, sh->child_pid, path,
		                     opts->fork_timeout > 0 ? opts->fork_timeout : 300);
	if (hs_attach_interrupted() && opts->fork && !t.dead && !(rc == 0 && fs.objects)) {
		stop_fork_child(pid, running && dump_entered ? pages : 0,
		                sh && sh->state == HS_ATTACH_STATE_DONE ? sh->child_pid : 0, path);
		rc = hs_error_set(HS_EUSER, "interrupted by signal %d: let go of process %d, which runs "
		                  "on where it was, and stopped its forked child; no snapshot was "
		                  "written", hs_attach_interrupted(), pid);
	}
	if (out) {
		out->python_major = 3;
		out->python_minor = tg.minor;
		out->python_hexversion = tg.hexversion;
		out->mode = (hs_attach_mode)mode;
		if (sh && rc == 0) {
			out->objects = sh->objects;
			out->edges = sh->edges;
			out->bytes = sh->bytes;
			out->pause_seconds = sh->pause_seconds;
		}
		if (sh && rc == 0 && opts->fork) {
			out->objects = fs.objects;
			out->edges = fs.edges;
			out->bytes = fs.bytes;
			out->child_pid = sh->child_pid;
			out->child_seconds = fs.child_seconds;
			out->child_private_dirty = fs.private_dirty;
		}
		out->stopped_seconds = t.stopped_total;
		out->seconds = hs_attach__now() - t0;
		snprintf(out->hook, sizeof(out->hook), "%s", tg.hook);
	}
	hs_free(sh);
	hs_free(buf);
	hs_attach__release(&t);
	return rc;
}
