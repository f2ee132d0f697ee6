#!/usr/bin/env bash
# Headless Chromium and ChromeDriver for tests/dashboard.rs: Debian's packages
# chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver),
# installed with apt-get when missing (that needs root). Prints nothing on
# success; says why on stderr and exits 1 when they cannot be had.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "chromium.sh: chromium and chromium-driver are missing; install them (apt-get install chromium chromium-driver)" >&2
    exit 1
fi
# One apt-get at a time across the test binaries (tests/tools/sshd.sh too).
exec 9>/tmp/gitfleet-apt.lock
flock 9
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium chromium-driver >&2
fi
