/*
 * The clone trick: a child created by clone(2) on a small stack that jumps
 * straight back into the caller's setjmp point, so that every stage runs as
 * ordinary code in the caller's function with its own copy of memory.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <setjmp.h>
#include <signal.h>

#include "nsexec.h"

/*
 * The child's stack, followed by where to jump. The stack grows down from
 * stack_ptr, so the jump target sits just above the stack's top.
 */
struct clone_t {
	char stack[4096] __attribute__((aligned(16)));
	char stack_ptr[0];

	jmp_buf *env;
	int jmpval;
};

/*
 * Runs in the new process. It shares no memory with its parent (no CLONE_VM),
 * so jumping to the parent's saved context continues in the child's own copy.
 */
static int child_func(void *arg) __attribute__((noinline));
static int child_func(void *arg)
{
	struct clone_t *ca = (struct clone_t *)arg;
	longjmp(*ca->env, ca->jmpval);
}

static int clone_with_flags(jmp_buf *env, int jmpval, int flags) __attribute__((noinline));
static int clone_with_flags(jmp_buf *env, int jmpval, int flags)
{
	struct clone_t ca = {
		.env = env,
		.jmpval = jmpval,
	};

	return clone(child_func, ca.stack_ptr, flags, &ca);
}

int clone_parent(jmp_buf *env, int jmpval)
{
	return clone_with_flags(env, jmpval, CLONE_PARENT | SIGCHLD);
}

int clone_child(jmp_buf *env, int jmpval)
{
	return clone_with_flags(env, jmpval, SIGCHLD);
}
