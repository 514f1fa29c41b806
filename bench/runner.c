/*
 * Interleaved start-up benchmark: runs each program RUNS times, one process
 * per run, the way a super-server spawns a health check per connection.
 *
 *   runner RUNS WARMUPS PROGRAM... -- ARGUMENT...
 *
 * Every PROGRAM gets the same ARGUMENTs, stdin and stdout on /dev/null and
 * this process's stderr and environment. Each round runs every program once,
 * in a freshly shuffled order, so that drift (CPU frequency, page cache, the
 * server's state) and whatever the previous process left behind fall on all
 * programs alike. WARMUPS rounds come first and are not recorded.
 *
 * Per run: wall time from just before posix_spawn to wait4's return
 * (CLOCK_MONOTONIC), CPU time user + system and peak RSS from wait4's rusage,
 * which also covers the descendants a program waited for (psql under bash).
 *
 * Prints one tab-separated line per program, in the order given:
 *   PROGRAM  wall-median-ms  wall-p90-ms  cpu-median-ms  peak-rss-median-KiB
 * Any run that fails to start or exits with a status other than 0 ends the
 * benchmark with exit status 1: numbers of a check that failed mean nothing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

struct samples {
	double *wall_ms, *cpu_ms, *rss_kib;
};

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double timeval_ms(struct timeval t)
{
	return (double)t.tv_sec * 1e3 + (double)t.tv_usec / 1e3;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile: always a value that was measured. Sorts values. */
static double percentile(double *values, int count, int percent)
{
	qsort(values, (size_t)count, sizeof *values, compare_doubles);
	int rank = (count * percent + 99) / 100;
	return values[rank > 0 ? rank - 1 : 0];
}

static void *allocate(size_t bytes)
{
	void *memory = calloc(1, bytes);
	if (!memory) {
		perror("runner: calloc");
		exit(1);
	}
	return memory;
}

/*
 * Runs argv once; returns 0, or -1 after saying why. Fills sample number slot,
 * unless slot is negative (a warm-up round).
 */
static int run_once(char **argv, const posix_spawn_file_actions_t *actions,
		    struct samples *samples, int slot)
{
	pid_t pid;
	int status;
	struct rusage usage;

	double start = now_ms();
	int error = posix_spawn(&pid, argv[0], actions, NULL, argv, environ);
	if (error) {
		fprintf(stderr, "runner: cannot start %s: %s\n", argv[0], strerror(error));
		return -1;
	}
	if (wait4(pid, &status, 0, &usage) != pid) {
		perror("runner: wait4");
		return -1;
	}
	double end = now_ms();

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			fprintf(stderr, "runner: %s exited with status %d, expected 0\n",
				argv[0], WEXITSTATUS(status));
		else
			fprintf(stderr, "runner: %s was killed by signal %d\n", argv[0],
				WTERMSIG(status));
		return -1;
	}
	if (slot >= 0) {
		samples->wall_ms[slot] = end - start;
		samples->cpu_ms[slot] = timeval_ms(usage.ru_utime) + timeval_ms(usage.ru_stime);
		samples->rss_kib[slot] = (double)usage.ru_maxrss;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int separator = 3;
	while (separator < argc && strcmp(argv[separator], "--") != 0)
		separator++;
	int runs = argc > 2 ? atoi(argv[1]) : 0;
	int warmups = argc > 2 ? atoi(argv[2]) : -1;
	int program_count = separator - 3;
	if (runs < 1 || warmups < 0 || program_count < 1 || separator == argc) {
		fprintf(stderr, "usage: runner RUNS WARMUPS PROGRAM... -- ARGUMENT...\n");
		return 2;
	}
	char **programs = argv + 3;
	char **arguments = argv + separator + 1;
	int argument_count = argc - separator - 1;

	/* One argv per program: the program's path, then the shared arguments. */
	char ***child_argvs = allocate(sizeof *child_argvs * (size_t)program_count);
	struct samples *samples = allocate(sizeof *samples * (size_t)program_count);
	for (int p = 0; p < program_count; p++) {
		child_argvs[p] = allocate(sizeof **child_argvs * (size_t)(argument_count + 2));
		child_argvs[p][0] = programs[p];
		memcpy(child_argvs[p] + 1, arguments, sizeof *arguments * (size_t)argument_count);
		samples[p].wall_ms = allocate(sizeof(double) * (size_t)runs);
		samples[p].cpu_ms = allocate(sizeof(double) * (size_t)runs);
		samples[p].rss_kib = allocate(sizeof(double) * (size_t)runs);
	}

	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);

	/* A fixed seed: the same order every time the benchmark is run. */
	unsigned short seed[3] = {0x5047, 0x5351, 0x4c43};
	int *order = allocate(sizeof *order * (size_t)program_count);
	for (int p = 0; p < program_count; p++)
		order[p] = p;

	for (int round = -warmups; round < runs; round++) {
		for (int i = program_count - 1; i > 0; i--) {
			int j = (int)(nrand48(seed) % (i + 1));
			int swapped = order[i];
			order[i] = order[j];
			order[j] = swapped;
		}
		for (int i = 0; i < program_count; i++) {
			int p = order[i];
			if (run_once(child_argvs[p], &actions, &samples[p], round) != 0)
				return 1;
		}
	}

	for (int p = 0; p < program_count; p++) {
		printf("%s\t%.3f\t%.3f\t%.3f\t%.0f\n", programs[p],
		       percentile(samples[p].wall_ms, runs, 50),
		       percentile(samples[p].wall_ms, runs, 90),
		       percentile(samples[p].cpu_ms, runs, 50),
		       percentile(samples[p].rss_kib, runs, 50));
	}
	return 0;
}
