/* The nsexec executable's constructor; linking this target installs it. */
#ifndef NSEXEC_INIT_H
#define NSEXEC_INIT_H

/* Returns 1 when the constructor ran the stages and this process is stage 2. */
int nsexec_init_in_stage2(void);

/*
 * Returns the process's argv as the constructor received it, and stores
 * argc in *count. The CLI parses these bytes instead of CommandLine.arguments.
 */
char **nsexec_init_arguments(int *count);

#endif
