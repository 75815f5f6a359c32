/*
 * Runs a command under ptrace, one instruction at a time, and prints the
 * functions of its executable in the order they first ran. The script
 * scripts/order-functions gives the list to the linker (lld
 * --symbol-ordering-file), which places those functions next to each other.
 * The CLI's code then spans 13 blocks of 64 KiB, where it spanned about 50.
 *
 * Usage: first-executed EXECUTABLE [ARG...]
 *
 * EXECUTABLE must be a non-PIE ELF file (ET_EXEC), as a static Swift
 * executable is, so that its symbols' addresses are the run-time ones. The
 * tracer follows the children that the command forks or clones and lets go of
 * each one when it execs another program. Functions print one name per line;
 * names that share an address (folded duplicates) print together.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

struct function {
	uint64_t start;
	uint64_t size;
	const char *name;
	/* The position in first-run order, or 0 while it has not run. */
	size_t rank;
};

static struct function *functions;
static size_t function_count;
static uint64_t text_start, text_end;

static void die(const char *operation)
{
	fprintf(stderr, "first-executed: %s: %s\n", operation, strerror(errno));
	exit(1);
}

static int by_start(const void *a, const void *b)
{
	const struct function *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

/* Reads the function symbols and the executable segments of path. */
static void load_symbols(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat info;
	if (fd < 0 || fstat(fd, &info) < 0)
		die(path);
	const unsigned char *image = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (image == MAP_FAILED)
		die(path);
	(void)close(fd);

	const Elf64_Ehdr *header = (const Elf64_Ehdr *)image;
	if (memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 || header->e_ident[EI_CLASS] != ELFCLASS64) {
		fprintf(stderr, "first-executed: %s is not a 64-bit ELF file\n", path);
		exit(1);
	}
	if (header->e_type != ET_EXEC) {
		fprintf(stderr, "first-executed: %s is position-independent; link it as a non-PIE executable\n", path);
		exit(1);
	}

	const Elf64_Phdr *segments = (const Elf64_Phdr *)(image + header->e_phoff);
	text_start = UINT64_MAX;
	for (int i = 0; i < header->e_phnum; i++) {
		if (segments[i].p_type != PT_LOAD || !(segments[i].p_flags & PF_X))
			continue;
		if (segments[i].p_vaddr < text_start)
			text_start = segments[i].p_vaddr;
		if (segments[i].p_vaddr + segments[i].p_memsz > text_end)
			text_end = segments[i].p_vaddr + segments[i].p_memsz;
	}

	const Elf64_Shdr *sections = (const Elf64_Shdr *)(image + header->e_shoff);
	for (int i = 0; i < header->e_shnum; i++) {
		if (sections[i].sh_type != SHT_SYMTAB)
			continue;
		const Elf64_Sym *symbols = (const Elf64_Sym *)(image + sections[i].sh_offset);
		size_t count = sections[i].sh_size / sizeof(Elf64_Sym);
		const char *names = (const char *)(image + sections[sections[i].sh_link].sh_offset);
		functions = calloc(count, sizeof(*functions));
		if (functions == NULL)
			die("calloc");
		for (size_t j = 0; j < count; j++) {
			if (ELF64_ST_TYPE(symbols[j].st_info) != STT_FUNC || symbols[j].st_value == 0)
				continue;
			functions[function_count++] = (struct function){
				.start = symbols[j].st_value,
				.size = symbols[j].st_size,
				.name = names + symbols[j].st_name,
			};
		}
	}
	if (function_count == 0) {
		fprintf(stderr, "first-executed: %s has no function symbols; do not strip it\n", path);
		exit(1);
	}
	qsort(functions, function_count, sizeof(*functions), by_start);
}

/* Returns the function at address, or NULL. */
static struct function *function_at(uint64_t address)
{
	size_t low = 0, high = function_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (functions[middle].start <= address)
			low = middle + 1;
		else
			high = middle;
	}
	if (low == 0)
		return NULL;
	struct function *found = &functions[low - 1];
	if (found->size != 0 && address >= found->start + found->size)
		return NULL;
	return found;
}

/* Remembers the first run of the function at address. Aliases share the rank. */
static void record(uint64_t address, size_t *next_rank)
{
	if (address < text_start || address >= text_end)
		return;
	struct function *function = function_at(address);
	if (function == NULL || function->rank != 0)
		return;
	*next_rank += 1;
	for (struct function *alias = function; alias >= functions && alias->start == function->start; alias--)
		alias->rank = *next_rank;
	for (struct function *alias = function + 1;
	     alias < functions + function_count && alias->start == function->start; alias++)
		alias->rank = *next_rank;
}

static int by_rank(const void *a, const void *b)
{
	const struct function *x = a, *y = b;
	return (x->rank > y->rank) - (x->rank < y->rank);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: first-executed EXECUTABLE [ARG...]\n");
		return 2;
	}
	load_symbols(argv[1]);

	pid_t command = fork();
	if (command < 0)
		die("fork");
	if (command == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
			die("PTRACE_TRACEME");
		(void)raise(SIGSTOP);
		execv(argv[1], argv + 1);
		die(argv[1]);
	}

	int status;
	if (waitpid(command, &status, 0) < 0)
		die("waitpid");
	long options = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC |
		       PTRACE_O_EXITKILL;
	if (ptrace(PTRACE_SETOPTIONS, command, NULL, (void *)options) < 0)
		die("PTRACE_SETOPTIONS");
	/* It runs freely up to the exec, because the tracer's own code before it is of no interest. */
	if (ptrace(PTRACE_CONT, command, NULL, NULL) < 0)
		die("PTRACE_CONT");

	size_t ranks = 0;
	int command_status = 0;
	for (;;) {
		pid_t task = waitpid(-1, &status, __WALL);
		if (task < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				break;
			die("waitpid");
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (task == command)
				command_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			continue;
		}
		if (!WIFSTOPPED(status))
			continue;

		int event = status >> 16;
		int signal = WSTOPSIG(status);
		/* A child that execs another program leaves the trace, but the command's own exec does not. */
		if (event == PTRACE_EVENT_EXEC && task != command) {
			(void)ptrace(PTRACE_DETACH, task, NULL, NULL);
			continue;
		}
		int deliver = event == 0 && signal != SIGTRAP && signal != SIGSTOP ? signal : 0;

		struct user_regs_struct registers;
		if (ptrace(PTRACE_GETREGS, task, NULL, &registers) == 0)
			record(registers.rip, &ranks);
		(void)ptrace(PTRACE_SINGLESTEP, task, NULL, (void *)(long)deliver);
	}

	qsort(functions, function_count, sizeof(*functions), by_rank);
	for (size_t i = 0; i < function_count; i++) {
		if (functions[i].rank != 0)
			printf("%s\n", functions[i].name);
	}
	if (command_status != 0)
		fprintf(stderr, "first-executed: the command exited with status %d\n", command_status);
	return command_status == 0 ? 0 : 1;
}
