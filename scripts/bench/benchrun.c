/* benchrun: runs one tracer, timestamps its output, optionally runs a
 * workload once it is attached, stops it with SIGINT, and reports timings
 * and peak RSS. Used by the scripts in scripts/bench; it only ever signals the
 * process it started (SIGINT) and, at the hard limit, the process group it
 * created for it (SIGTERM, SIGKILL), never anything by name.
 *
 * Usage: benchrun [options] -- TRACER ARGS...
 *   -m TEXT   stdout line containing TEXT marks "attached" (default: the
 *             first stdout line)
 *   -a MS     no marker line: consider the tracer attached MS ms after start
 *   -w CMD    after the marker, run CMD with /bin/sh -c and wait for it
 *             (its stdout is benchrun's stdout, printed before the report)
 *   -i MS     MS milliseconds after the marker (and after the workload),
 *             send SIGINT to the tracer (-1: never; default -1)
 *   -k MS     hard limit from start: SIGTERM, then SIGKILL 3 s later
 *             (default 120000)
 *   -O FILE   copy the tracer's stdout to FILE
 *   -E FILE   copy the tracer's stderr to FILE (default: discard)
 *
 * Prints one line of key=value pairs (times in ms since the tracer was
 * started, -1 when the event did not happen):
 *   attached wl_end sigint first_after last_out exit rss_kb cpu_ms status
 *   lines killed
 * attached: the marker line was read; wl_end: the workload ended;
 * first_after: the first stdout byte read after the latest of attached,
 * wl_end and sigint (the results); last_out: the last stdout byte; lines:
 * stdout lines; cpu_ms: the tracer's user + system CPU time. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double t0;
static volatile sig_atomic_t interrupted;

/* Ctrl-C (or SIGTERM/SIGHUP) on benchrun: stop the tracer, don't orphan it. */
static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 - t0;
}

static void usage(void)
{
	fprintf(stderr, "usage: benchrun [-m TEXT] [-a MS] [-w CMD] [-i MS] [-k MS] [-O FILE] [-E FILE] -- CMD ARGS...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *marker = NULL, *workload = NULL, *out_file = NULL, *err_file = NULL;
	long sigint_ms = -1, kill_ms = 120000, assume_ms = -1;
	int opt;
	while ((opt = getopt(argc, argv, "+m:a:w:i:k:O:E:")) != -1) {
		switch (opt) {
		case 'm': marker = optarg; break;
		case 'a': assume_ms = atol(optarg); break;
		case 'w': workload = optarg; break;
		case 'i': sigint_ms = atol(optarg); break;
		case 'k': kill_ms = atol(optarg); break;
		case 'O': out_file = optarg; break;
		case 'E': err_file = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();

	int outp[2], errp[2];
	if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
		perror("pipe");
		return 1;
	}
	FILE *out_copy = out_file ? fopen(out_file, "w") : NULL;
	FILE *err_copy = err_file ? fopen(err_file, "w") : NULL;
	if ((out_file && !out_copy) || (err_file && !err_copy)) {
		perror("fopen");
		return 1;
	}

	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		/* If benchrun dies anyway, the tracer is told to stop. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		execvp(argv[optind], argv + optind);
		perror("exec");
		_exit(127);
	}
	setpgid(pid, pid);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	close(outp[1]);
	close(errp[1]);

	double t_marker = -1, t_sigint = -1, t_first_after = -1, t_last = -1, t_exit = -1, t_wl = -1;
	double t_term = -1;
	int killed = 0, workload_done = 0;
	long lines = 0;
	char line[4096];
	size_t line_len = 0;
	int out_open = 1, err_open = 1;
	char buf[65536];

	while (out_open || err_open) {
		double t = now_ms();
		if (t_marker < 0 && assume_ms >= 0 && t >= assume_ms)
			t_marker = t;
		if (t_marker >= 0 && workload && !workload_done) {
			/* The workload runs while we are not reading; the pipe
			 * (64 KiB) may fill, which only delays the tracer's
			 * output, as a slow terminal would. Drain it in a child. */
			fflush(stdout);
			pid_t w = fork();
			if (w == 0) {
				execl("/bin/sh", "sh", "-c", workload, (char *)NULL);
				_exit(127);
			}
			/* Keep reading the tracer's output while the workload runs. */
			int st;
			for (;;) {
				pid_t r = waitpid(w, &st, WNOHANG);
				if (r == w || (r < 0 && errno != EINTR))
					break;
				struct pollfd p = { outp[0], POLLIN, 0 };
				if (out_open && poll(&p, 1, 5) > 0) {
					ssize_t n = read(outp[0], buf, sizeof buf);
					if (n <= 0) {
						out_open = 0;
						continue;
					}
					if (out_copy)
						fwrite(buf, 1, n, out_copy);
					for (ssize_t i = 0; i < n; i++)
						lines += buf[i] == '\n';
				} else if (!out_open) {
					usleep(2000);
				}
			}
			workload_done = 1;
			t = now_ms();
			t_wl = t; /* the SIGINT delay counts from the workload's end */
			t_first_after = -1;
		}
		double from = t_wl >= 0 ? t_wl : t_marker;
		if (t_marker >= 0 && (!workload || workload_done) && sigint_ms >= 0 && t_sigint < 0 && t >= from + sigint_ms) {
			kill(pid, SIGINT);
			t_sigint = now_ms();
			t_first_after = -1;
		}
		if (interrupted == 1) {
			kill(pid, SIGINT);
			interrupted = 2;
			if (kill_ms > t + 10000)
				kill_ms = t + 10000;
		}
		if (t >= kill_ms && t_term < 0) {
			kill(-pid, SIGTERM);
			t_term = t;
			killed = 1;
		}
		if (t_term >= 0 && t >= t_term + 3000 && killed == 1) {
			kill(-pid, SIGKILL);
			killed = 2;
		}
		struct pollfd p[2] = { { out_open ? outp[0] : -1, POLLIN, 0 }, { err_open ? errp[0] : -1, POLLIN, 0 } };
		int timeout = 10;
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			ssize_t n = read(outp[0], buf, sizeof buf);
			if (n <= 0) {
				out_open = 0;
			} else {
				double tr = now_ms();
				if (out_copy)
					fwrite(buf, 1, n, out_copy);
				int was_attached = t_marker >= 0;
				if (was_attached && t_first_after < 0 && (!workload || workload_done))
					t_first_after = tr;
				t_last = tr;
				for (ssize_t i = 0; i < n; i++) {
					if (buf[i] == '\n') {
						lines++;
						line[line_len < sizeof line ? line_len : sizeof line - 1] = 0;
						if (t_marker < 0 && (!marker || strstr(line, marker))) {
							t_marker = tr;
							t_first_after = -1;
						}
						line_len = 0;
					} else if (line_len < sizeof line - 1) {
						line[line_len++] = buf[i];
					}
				}
			}
		}
		if (p[1].revents) {
			ssize_t n = read(errp[0], buf, sizeof buf);
			if (n <= 0)
				err_open = 0;
			else if (err_copy)
				fwrite(buf, 1, n, err_copy);
		}
	}
	int status = 0;
	struct rusage ru;
	for (;;) {
		pid_t r = wait4(pid, &status, WNOHANG, &ru);
		if (r == pid)
			break;
		double t = now_ms();
		if (t >= kill_ms && t_term < 0) {
			kill(-pid, SIGTERM);
			t_term = t;
			killed = 1;
		}
		if (t_term >= 0 && t >= t_term + 3000 && killed == 1) {
			kill(-pid, SIGKILL);
			killed = 2;
		}
		usleep(1000);
	}
	t_exit = now_ms();
	if (out_copy)
		fclose(out_copy);
	if (err_copy)
		fclose(err_copy);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	double cpu_ms = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
	printf("attached=%.1f wl_end=%.1f sigint=%.1f first_after=%.1f last_out=%.1f exit=%.1f rss_kb=%ld cpu_ms=%.1f status=%d lines=%ld killed=%d\n",
	       t_marker, t_wl, t_sigint, t_first_after, t_last, t_exit, ru.ru_maxrss, cpu_ms, code, lines, killed);
	return 0;
}
