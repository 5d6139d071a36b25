/*-------------------------------------------------------------------------
 *
 * backup_run.c
 *	  The program runner of backup verification: pg_restore, psql,
 *	  pg_verifybackup from the server's bindir, run by the worker.
 *
 * adr_backup_run() forks and execs one program with an argument vector,
 * never a shell, in a process group of its own with the server's signal
 * handlers reset.  Its stdin gets a given text, or "\restrict KEY" and
 * then a plain dump read through zlib and streamed through the dump
 * filter (dumpfilter.c); its stdout is captured, and the start of its
 * stderr.  The backup the worker opened is the program's descriptor 3;
 * the restore role's password is in its environment only.  One poll()
 * serves the three pipes and waits at most a second, with
 * CHECK_FOR_INTERRUPTS() in between; during a restore the free space of
 * the data directory's file system is checked once a second.
 *
 * The program being run is remembered, so that adr_backup_kill_program()
 * (the worker's exit callback, and its error path) stops its whole process
 * group.
 *
 * IDENTIFICATION
 *	  src/backup_run.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/wait_event.h"

#include "backup.h"
#include "compat.h"
#include "dumpfilter.h"

#define BR_STDERR_MAX			8192	/* kept of each program's stderr */
#define BR_CHUNK				65536

/* The program the worker is running, killed at exit. */
static volatile pid_t br_child = 0;

/*
 * Stop the program being run, if any: SIGTERM to its process group, then,
 * after 5 s, SIGKILL.  An on_shmem_exit callback of the worker.
 */
void
adr_backup_kill_program(int code, Datum arg)
{
	pid_t		pid = br_child;
	int			i;

	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	for (i = 0; i < 50; i++)
	{
		if (waitpid(pid, NULL, WNOHANG) != 0)
		{
			br_child = 0;
			return;
		}
		pg_usleep(100000);
	}
	kill(-pid, SIGKILL);
	(void) waitpid(pid, NULL, 0);
	br_child = 0;
}

/*
 * What a run holds that an ERROR must not leak: the pipes' descriptors
 * (-1 once closed), the dump filter's buffers, the buffer of what goes to
 * the program's stdin and the read buffer.  palloc'd by
 * adr_backup_run(), so that its PG_CATCH finds them whatever br_run() had
 * done when the ERROR came.
 */
typedef struct BrHeld
{
	int			inpipe[2];
	int			outpipe[2];
	int			errpipe[2];
	AdrDumpFilter filter;
	StringInfoData pending;		/* for the program's stdin */
	char	   *chunk;			/* BR_CHUNK bytes */
} BrHeld;

static int	br_run(AdrBackupProgram *prog, BrHeld *held);

/* The dump filter's output goes to the StringInfo arg. */
static void
br_append(void *arg, const char *data, size_t len)
{
	appendBinaryStringInfo((StringInfo) arg, data, len);
}

static void
br_close(int *fd)
{
	if (*fd >= 0)
	{
		close(*fd);
		*fd = -1;
	}
}

/* Close what is still open, free the filter's and the run's buffers. */
static void
br_release(BrHeld *held)
{
	int			i;

	for (i = 0; i < 2; i++)
	{
		br_close(&held->inpipe[i]);
		br_close(&held->outpipe[i]);
		br_close(&held->errpipe[i]);
	}
	adr_dump_filter_free(&held->filter);
	pfree(held->pending.data);
	pfree(held->chunk);
}

/*
 * Run a program (see AdrBackupProgram).  When prog->dump is given,
 * "\\restrict restrict_key" and then the plain dump it reads, filtered,
 * go to the program's stdin.  stdout is captured into prog->out (when
 * given), stderr into prog->err (its start is kept).  With watch_space (a
 * restore), the program is stopped when free space falls below
 * adr_ops.verify_min_free_space.  Waits at most a second at a time and
 * checks for interrupts in between; the exit callback kills the program's
 * process group.  Returns the exit status (-1: killed, or could not run);
 * sets prog->failure when the run was stopped for a reason worth a
 * failure, prog->rejected when the filter rejected the dump.
 *
 * On an ERROR (an interrupt, a failed poll, no memory) the program is
 * killed, the pipes are closed and the filter's buffers freed before the
 * ERROR goes on: a caller that catches it (the worker records the error
 * and goes on to drop the scratch database) holds nothing of the run.
 */
int
adr_backup_run(AdrBackupProgram *prog)
{
	BrHeld	   *held = palloc(sizeof(BrHeld));
	int			rc;
	int			i;

	for (i = 0; i < 2; i++)
		held->inpipe[i] = held->outpipe[i] = held->errpipe[i] = -1;
	initStringInfo(&held->pending);
	held->chunk = palloc(BR_CHUNK);
	adr_dump_filter_init(&held->filter, prog->rules, br_append, &held->pending);
	PG_TRY();
	{
		rc = br_run(prog, held);
	}
	PG_CATCH();
	{
		br_release(held);
		adr_backup_kill_program(0, 0);
		PG_RE_THROW();
	}
	PG_END_TRY();
	br_release(held);
	pfree(held);
	return rc;
}

/* adr_backup_run(), with what it holds in held. */
static int
br_run(AdrBackupProgram *prog, BrHeld *held)
{
	int		   *inpipe = held->inpipe;
	int		   *outpipe = held->outpipe;
	int		   *errpipe = held->errpipe;
	pid_t		pid;
	int			status;
	AdrDumpFilter *filter = &held->filter;
	StringInfo	pending = &held->pending;
	size_t		pending_off = 0;
	gzFile		gz = prog->dump;
	bool		src_eof = (gz == NULL);
	bool		feed = (gz != NULL || prog->input != NULL);
	char	   *chunk = held->chunk;
	bool		out_open = true,
				err_open = true;
	time_t		space_checked = 0;
	sigset_t	all,
				saved;
	int			fork_errno;
	AdrDumpFilterResult fresult;

	if (gz)
		appendStringInfo(pending, "\\restrict %s\n", prog->restrict_key);
	else if (prog->input)
		appendStringInfoString(pending, prog->input);
	prog->failure = NULL;
	prog->rejected = NULL;

	if ((feed && pipe(inpipe) != 0) || pipe(outpipe) != 0 || pipe(errpipe) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create a pipe: %m")));

	/*
	 * Every signal is blocked across fork(), so that no handler of the
	 * server runs in the child (where it would act on the worker's shared
	 * state) before the child has reset them all.
	 */
	sigfillset(&all);
	fflush(NULL);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = fork();
	if (pid == 0)
	{
		/* child: its own process group, default signals, then exec */
		sigset_t	none;
		int			devnull = open("/dev/null", O_RDWR);
		int			backup = prog->backup_fd >= 0 ? fcntl(prog->backup_fd, F_DUPFD, 10) : -1;
		int			sig;

		setpgid(0, 0);
		for (sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(feed ? inpipe[0] : devnull, 0);
		dup2(outpipe[1], 1);
		dup2(errpipe[1], 2);
		/* the backup the worker opened, as /proc/self/fd/3 */
		if (backup >= 0)
		{
			dup2(backup, 3);
			closefrom(4);
		}
		else
			closefrom(3);
		/* the restore role's password: in the environment, never in argv */
		unsetenv("PGPASSWORD");
		if (prog->password)
			setenv("PGPASSWORD", prog->password, 1);
		execv(prog->argv[0], (char *const *) prog->argv);
		_exit(127);
	}
	fork_errno = errno;
	if (pid > 0)
		br_child = pid;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0)
	{
		errno = fork_errno;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not fork: %m")));
	}
	setpgid(pid, pid);			/* either side may win the race */
	br_close(&outpipe[1]);
	br_close(&errpipe[1]);
	if (feed)
	{
		br_close(&inpipe[0]);
		fcntl(inpipe[1], F_SETFL, O_NONBLOCK);
	}
	fcntl(outpipe[0], F_SETFL, O_NONBLOCK);
	fcntl(errpipe[0], F_SETFL, O_NONBLOCK);

	while (out_open || err_open || (feed && inpipe[1] >= 0))
	{
		struct pollfd fds[3];
		int			nfds = 0;
		int			in_idx = -1,
					out_idx = -1,
					err_idx = -1;

		/* refill what goes to the program */
		if (feed && inpipe[1] >= 0 && pending_off >= (size_t) pending->len)
		{
			resetStringInfo(pending);
			pending_off = 0;
			while (pending->len == 0 && !src_eof)
			{
				int			got = gzread(gz, chunk, BR_CHUNK);

				if (got < 0 || (got == 0 && !gzeof(gz)))
				{
					int			errnum;
					const char *msg = gzerror(gz, &errnum);

					prog->failure = psprintf("corrupt: could not decompress the backup: %s",
											 errnum == Z_ERRNO ? strerror(errno) : msg);
					src_eof = true;
					goto kill_it;
				}
				if (got == 0)
				{
					int			errnum;
					const char *msg = gzerror(gz, &errnum);

					src_eof = true;
					if (errnum != Z_OK && errnum != Z_STREAM_END)
					{
						prog->failure = psprintf("truncated: the compressed backup ends early: %s", msg);
						goto kill_it;
					}
				}
				fresult = adr_dump_filter(filter, chunk, got, src_eof);
				if (fresult == ADR_DUMP_FILTER_NOMEM)
					ereport(ERROR,
							(errcode(ERRCODE_OUT_OF_MEMORY),
							 errmsg("out of memory"),
							 errdetail("The filter of a plain dump could not allocate memory.")));
				if (fresult == ADR_DUMP_FILTER_REJECTED)
				{
					prog->rejected = pstrdup(filter->error);
					goto kill_it;
				}
			}
			/* all sent: gzread's end was checked where it was reached */
			if (pending->len == 0 && src_eof)
			{
				br_close(&inpipe[1]);
			}
		}
		if (feed && inpipe[1] >= 0)
		{
			fds[nfds].fd = inpipe[1];
			fds[nfds].events = POLLOUT;
			in_idx = nfds++;
		}
		if (out_open)
		{
			fds[nfds].fd = outpipe[0];
			fds[nfds].events = POLLIN;
			out_idx = nfds++;
		}
		if (err_open)
		{
			fds[nfds].fd = errpipe[0];
			fds[nfds].events = POLLIN;
			err_idx = nfds++;
		}
		if (poll(fds, nfds, 1000) < 0 && errno != EINTR)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not poll the pipes of a program: %m")));
		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);

		/* a restore must not fill the disk of the live databases */
		if (prog->watch_space && adr_ops_verify_min_free_space > 0 && time(NULL) != space_checked)
		{
			struct statvfs vfs;

			space_checked = time(NULL);
			if (statvfs(DataDir, &vfs) == 0 &&
				(uint64) vfs.f_bavail * vfs.f_frsize / (1024 * 1024) <
				(uint64) adr_ops_verify_min_free_space)
			{
				prog->failure = psprintf("disk space: %llu MB are free on the file system of the data directory, "
										 "less than adr_ops.verify_min_free_space (%d MB); the restore was stopped",
										 (unsigned long long) ((uint64) vfs.f_bavail * vfs.f_frsize / (1024 * 1024)),
										 adr_ops_verify_min_free_space);
				goto kill_it;
			}
		}

		if (in_idx >= 0 && (fds[in_idx].revents & (POLLOUT | POLLERR | POLLHUP)))
		{
			ssize_t		w = write(inpipe[1], pending->data + pending_off, pending->len - pending_off);

			if (w > 0)
				pending_off += w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
			{
				/* the program stopped reading: it failed; its status says */
				br_close(&inpipe[1]);
			}
		}
		if (out_idx >= 0 && (fds[out_idx].revents & (POLLIN | POLLHUP | POLLERR)))
		{
			ssize_t		r = read(outpipe[0], chunk, BR_CHUNK);

			if (r > 0 && prog->out)
				appendBinaryStringInfo(prog->out, chunk, r);
			else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				out_open = false;
		}
		if (err_idx >= 0 && (fds[err_idx].revents & (POLLIN | POLLHUP | POLLERR)))
		{
			ssize_t		r = read(errpipe[0], chunk, BR_CHUNK);

			if (r > 0)
			{
				if (prog->err->len < BR_STDERR_MAX)
					appendBinaryStringInfo(prog->err, chunk, Min(r, BR_STDERR_MAX - prog->err->len));
			}
			else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				err_open = false;
		}
	}

	br_close(&outpipe[0]);
	br_close(&errpipe[0]);
	for (;;)
	{
		pid_t		r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
		{
			status = -1;
			break;
		}
		/* the program has closed its pipes: it is exiting */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 5,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	br_child = 0;
	if (status == -1)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;

kill_it:
	br_close(&inpipe[1]);
	br_close(&outpipe[0]);
	br_close(&errpipe[0]);
	adr_backup_kill_program(0, 0);
	return -1;
}

