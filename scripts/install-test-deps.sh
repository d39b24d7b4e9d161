#!/bin/sh
# Install the system packages the test suite needs, if missing: Debian's PostgreSQL server (the study
# store's PostgreSQL tests) and Chromium (the study's browser test; Playwright drives /usr/bin/chromium,
# never a downloaded browser). Uses apt-get only when running as root; otherwise prints the command.
set -eu

missing=""
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing="$missing postgresql"
else
    echo "install-test-deps: PostgreSQL server found ($(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1))"
fi
if [ ! -x /usr/bin/chromium ]; then
    missing="$missing chromium"
else
    echo "install-test-deps: chromium found (/usr/bin/chromium)"
fi

if [ -z "$missing" ]; then
    echo "install-test-deps: nothing to install"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: missing:$missing — not root or no apt-get, so not installing."
    echo "install-test-deps: run: sudo apt-get install -y$missing   (the tests that need them skip, or fail under CI=true)"
    exit 0
fi
echo "install-test-deps: installing:$missing (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
echo "install-test-deps: installed:$missing"
