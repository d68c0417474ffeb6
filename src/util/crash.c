/* A worker that crashes: it must end at once and say where.
 *
 * Not dumpable: a core dump first waits for every thread of the process to
 * stop, and a worker thread can be sleeping in the kernel, uninterruptibly,
 * in a cache notification that waits for a directory lock held by a caller
 * who waits for an answer only the next worker can give. The dump then
 * never starts, the process never ends, and the supervisor never starts
 * the next worker: the whole mount hangs (seen in the test VM). Without the
 * dump the main thread ends at once and the supervisor takes over.
 *
 * The fatal signal and a backtrace go to stderr (the daemon's log) first. */
#include "stsfs/crash.h"

#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef __SANITIZE_ADDRESS__ /* the sanitizers report crashes themselves */
static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };

static void on_fatal(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	char line[160], where[48];
	/* A signal another process sent carries its pid, not an address. */
	if (si->si_code <= 0)
		snprintf(where, sizeof(where), "sent by pid %ld", (long)si->si_pid);
	else
		snprintf(where, sizeof(where), "at address %p", si->si_addr);
	int n = snprintf(line, sizeof(line), "stsfs[%ld]: error: worker thread %ld: fatal signal %d (%s) %s\n",
			 (long)getpid(), (long)gettid(), sig, sigdescr_np(sig), where);
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
		n = 0;
	void *frames[48];
	backtrace_symbols_fd(frames, backtrace(frames, 48), STDERR_FILENO);
	/* SA_RESETHAND put the default action back: the signal ends the
	 * process when the handler returns and the access faults again, or
	 * at once for a signal sent. */
	raise(sig);
}
#endif

void crash_handlers_install(void)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#ifndef __SANITIZE_ADDRESS__
	void *warm[1];
	backtrace(warm, 1); /* loads libgcc now: not in the handler */
	struct sigaction sa = { .sa_sigaction = on_fatal, .sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
#endif
}
