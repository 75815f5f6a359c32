/*
 * Times several commands against each other by running them in turn, one
 * run of each per round, so that a change in background load hits all of
 * them alike. Prints the median wall time of each with its interquartile
 * range. docs/BENCHMARKS.md used it for the before-and-after comparisons.
 *
 * Usage: alternate RUNS COMMAND [ARG...] [:: COMMAND [ARG...]]...
 *
 * Each COMMAND is a path (no PATH search, no shell); "::" separates the
 * commands. Every command gets 20 warm-up runs first.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COMMANDS 16
#define WARMUP_RUNS 20

static double now_ms(void)
{
	struct timespec time;
	clock_gettime(CLOCK_MONOTONIC, &time);
	return (double)time.tv_sec * 1e3 + (double)time.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Runs argv once and returns its wall time in milliseconds, or -1 if it failed. */
static double run_once(char **argv)
{
	double start = now_ms();
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		exit(1);
	}
	if (child == 0) {
		execv(argv[0], argv);
		_exit(127);
	}

	int status;
	if (waitpid(child, &status, 0) < 0) {
		perror("waitpid");
		exit(1);
	}
	double elapsed = now_ms() - start;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "alternate: %s failed with wait status %d\n", argv[0], status);
		return -1;
	}
	return elapsed;
}

int main(int argc, char **argv)
{
	if (argc < 3 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: alternate RUNS COMMAND [ARG...] [:: COMMAND [ARG...]]...\n");
		return 2;
	}
	int runs = atoi(argv[1]);

	char **commands[MAX_COMMANDS];
	int count = 0;
	commands[count++] = &argv[2];
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "::") != 0)
			continue;
		argv[i] = NULL;
		if (count == MAX_COMMANDS || i + 1 >= argc) {
			fprintf(stderr, "alternate: give 1 to %d commands, each after '::'\n", MAX_COMMANDS);
			return 2;
		}
		commands[count++] = &argv[i + 1];
	}

	double *times[MAX_COMMANDS];
	for (int c = 0; c < count; c++) {
		times[c] = calloc((size_t)runs, sizeof(double));
		if (times[c] == NULL) {
			perror("calloc");
			return 1;
		}
	}

	for (int round = 0; round < WARMUP_RUNS; round++) {
		for (int c = 0; c < count; c++) {
			if (run_once(commands[c]) < 0)
				return 1;
		}
	}
	for (int round = 0; round < runs; round++) {
		for (int c = 0; c < count; c++) {
			times[c][round] = run_once(commands[c]);
			if (times[c][round] < 0)
				return 1;
		}
	}

	for (int c = 0; c < count; c++) {
		qsort(times[c], (size_t)runs, sizeof(double), compare_doubles);
		printf("%.3f ms (IQR %.3f-%.3f)", times[c][runs / 2], times[c][runs / 4], times[c][3 * runs / 4]);
		for (char **word = commands[c]; *word != NULL; word++)
			printf(" %s", *word);
		printf("\n");
	}
	return 0;
}
