# shellcheck shell=bash
# Helpers that set up throwaway OCI containers for nsexec's demo, benchmark and
# stress scripts. Source this file from a bash script that runs as root.
#
#   nsx_install_packages PKG...     install the Debian packages that are missing
#   nsx_make_tempdir                create a temporary directory, print its path
#   nsx_container_id NAME           print "nsexec-<script pid>-NAME"
#   nsx_make_bundle DIR HOSTNAME    create a busybox OCI bundle in DIR
#   nsx_runc_start ID BUNDLE        start a detached runc container, print its init pid
#   nsx_runc_cleanup ID             kill and delete a runc container, never fails
#   nsx_crun_start ID BUNDLE        start a detached crun container, print its init pid
#   nsx_crun_cleanup ID             kill and delete a crun container, never fails
#
# On failure a function prints an error line and returns non-zero. They need
# the Debian packages busybox-static, jq and runc, and for crun also crun and
# util-linux.

# Set once nsx_install_packages has run `apt-get update` in this process.
NSX_APT_UPDATED=0

nsx_error() {
    echo "${0##*/}: $*" >&2
}

# Prints the command whose presence shows that PACKAGE is installed. It prints
# nothing where only dpkg can tell, because libgtest-dev and libc6-dev install
# no command and the dynamic busybox package also installs a busybox command.
# For time it prints the path, because `time` alone is a bash keyword.
nsx_package_command() {
    case "$1" in
        busybox-static | libgtest-dev | libc6-dev) ;;
        util-linux) echo unshare ;;
        linux-perf) echo perf ;;
        iproute2) echo ip ;;
        binutils) echo readelf ;;
        time) echo /usr/bin/time ;;
        *) echo "$1" ;;
    esac
}

nsx_package_present() {
    local package=$1 command
    command=$(nsx_package_command "$package")
    if [[ -n $command ]]; then
        command -v "$command" >/dev/null
    else
        [[ $(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) == "install ok installed" ]]
    fi
}

nsx_install_packages() {
    local package missing=()
    for package in "$@"; do
        if ! nsx_package_present "$package"; then
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi

    if ((EUID != 0)); then
        nsx_error "cannot install missing packages ${missing[*]}: apt-get needs root; run as root or install them first"
        return 1
    fi
    echo "${0##*/}: installing missing packages: ${missing[*]}"
    if ((NSX_APT_UPDATED == 0)); then
        apt-get update -q || { nsx_error "apt-get update failed; check the apt sources"; return 1; }
        NSX_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" || {
        nsx_error "apt-get install failed for ${missing[*]}"
        return 1
    }
}

nsx_make_tempdir() {
    mktemp -d -t "nsexec-$$.XXXXXX"
}

# The script's pid in the id keeps parallel runs from colliding.
nsx_container_id() {
    echo "nsexec-$$-$1"
}

# Creates DIR/rootfs with a static busybox, users root and app (uid and gid
# 1000), and DIR/config.json from `runc spec` set up to run `sleep 1000000`.
# DIR must be new or empty.
nsx_make_bundle() {
    local dir=$1 hostname=$2
    local rootfs="$dir/rootfs" applet

    mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,home/app,root,etc}
    chmod 1777 "$rootfs/tmp"
    chown 1000:1000 "$rootfs/home/app"
    cp /bin/busybox "$rootfs/bin/busybox" || {
        nsx_error "cannot copy /bin/busybox; install the busybox-static package"
        return 1
    }
    for applet in $("$rootfs/bin/busybox" --list); do
        if [[ $applet != busybox ]]; then
            ln -s busybox "$rootfs/bin/$applet"
        fi
    done

    cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
EOF
    cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
app:x:1000:
EOF

    (cd "$dir" && runc spec) || { nsx_error "runc spec failed in $dir"; return 1; }
    jq --arg hostname "$hostname" '
        .process.terminal = false
        | .process.args = ["sleep", "1000000"]
        | .hostname = $hostname
        | .root.readonly = false' "$dir/config.json" >"$dir/config.json.new" || {
        nsx_error "cannot edit $dir/config.json with jq"
        return 1
    }
    mv "$dir/config.json.new" "$dir/config.json"
}

# Prints the pid from a runtime's `state` JSON, read on stdin.
nsx_state_pid() {
    local pid
    pid=$(jq -r .pid)
    if [[ ! $pid =~ ^[1-9][0-9]*$ ]]; then
        nsx_error "container state has no valid init pid (got '$pid')"
        return 1
    fi
    echo "$pid"
}

# The init of a detached container inherits the runtime's stdout and stderr.
# They go to /dev/null and to BUNDLE/runc.log, so that a pipe reading this
# script's output does not stay open until the container dies.
nsx_runc_start() {
    local id=$1 bundle=$2 log="$2/runc.log"
    if ! (cd "$bundle" && runc run -d "$id" </dev/null >/dev/null 2>"$log"); then
        nsx_error "runc run failed for container $id in $bundle: $(tail -n 1 "$log")"
        return 1
    fi
    runc state "$id" | nsx_state_pid
}

nsx_runc_cleanup() {
    runc kill "$1" KILL >/dev/null 2>&1 || true
    runc delete -f "$1" >/dev/null 2>&1 || true
}

# crun 1.8.1 rejects hybrid cgroup mounts ("cgroups in hybrid mode not
# supported"), so crun runs in a private mount namespace whose /sys/fs/cgroup is
# a plain cgroup2 mount, with no cgroup manager. The container therefore stays
# in the caller's cgroups and gets no resource limits. Later crun commands
# (state, exec, kill, delete) work from the host's mount namespace. Output goes
# to BUNDLE/crun.log, as for runc.
nsx_crun_start() {
    local id=$1 bundle=$2 log="$2/crun.log"
    # shellcheck disable=SC2016 # $1 expands in the inner sh, where it is the id.
    local script='umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && crun --cgroup-manager=disabled run -d "$1"'
    if ! (cd "$bundle" && unshare -m sh -c "$script" sh "$id" </dev/null >/dev/null 2>"$log"); then
        nsx_error "crun run failed for container $id in $bundle: $(tail -n 1 "$log")"
        return 1
    fi
    crun state "$id" | nsx_state_pid
}

nsx_crun_cleanup() {
    crun kill "$1" KILL >/dev/null 2>&1 || true
    crun delete -f "$1" >/dev/null 2>&1 || true
}
