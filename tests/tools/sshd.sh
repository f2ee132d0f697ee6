#!/usr/bin/env bash
# Prints the path of OpenSSH's sshd for the Git host tests, installing Debian's
# openssh-server first when it is missing (the tests start their own sshd on a
# loopback port with its own configuration; the system's sshd is not used).
set -euo pipefail
if ! command -v sshd >/dev/null && [[ ! -x /usr/sbin/sshd ]]; then
    echo "sshd.sh: installing openssh-server" >&2
    if [[ "$(id -u)" != 0 ]]; then
        sudo=sudo
    else
        sudo=
    fi
    # One apt-get at a time across the test binaries (tests/tools/chromium.sh too).
    exec 9>/tmp/gitfleet-apt.lock
    flock 9
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends openssh-server >&2
fi
command -v sshd 2>/dev/null || echo /usr/sbin/sshd
