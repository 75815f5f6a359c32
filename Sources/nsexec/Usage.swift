/// The version printed by --version.
let version = "0.1.0"

/// The --help text; docs/nsexec.md is the full manual.
let usage = """
Usage: nsexec [options] [--] [PROGRAM [ARG...]]

Run PROGRAM inside the namespaces of a running process or container.
Without PROGRAM, run $SHELL, else /bin/sh.

Target:
  -t, --target PID          process whose namespaces are entered
      --container ID        runc or crun container (all namespaces by default)
      --runtime-root DIR    state directory (default /run/runc, then /run/crun)

Namespaces (each optionally =FILE, a namespace file such as /run/netns/NAME):
  -a, --all                 every namespace of the target that differs from ours
  -m, --mount[=FILE]        mount namespace
  -u, --uts[=FILE]          UTS namespace (hostname)
  -i, --ipc[=FILE]          System V IPC namespace
  -n, --net[=FILE]          network namespace
  -p, --pid[=FILE]          PID namespace
  -C, --cgroup[=FILE]       cgroup namespace
  -U, --user[=FILE]         user namespace
  -T, --time[=FILE]         time namespace

Process:
  -S, --setuid UID          uid or user name from the container's /etc/passwd
  -G, --setgid GID          gid or group name from the container's /etc/group
      --preserve-credentials  keep uid and gid, also in a new user namespace
  -r, --root[=DIR]          root: the target's (default), or DIR inside it
  -w, --wd[=DIR]            working directory: the target's (default), or DIR inside the root
  -W, --wdns DIR            working directory resolved from the mount namespace's root
  -e                        start from the target's environment, not a clean one
      --env NAME=VALUE      set a variable (repeatable)
  -F, --no-fork             no stage 2 when no PID or time namespace is entered
  -c, --join-cgroup         move the program into the target's cgroups
      --tty                 run the program on a new pseudo-terminal

Output:
      --log-level LEVEL     error (default), warning, info, debug or trace, on stderr
      --log-format FORMAT   text (default) or json
  -h, --help                show this help
  -V, --version             show the version

Exit status: the program's; 128+N if killed by signal N; 125 if nsexec failed;
126 if PROGRAM cannot be executed; 127 if it is not found.

"""
