/* The nsexec executable's constructor; linking this target installs it. */
#ifndef NSEXEC_INIT_H
#define NSEXEC_INIT_H

/* Returns 1 when the constructor ran the stages and this process is stage 2. */
int nsexec_init_in_stage2(void);

#endif
