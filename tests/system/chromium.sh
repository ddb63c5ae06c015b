#!/bin/sh
# Headless Chromium for the browser tests (tests/report/test_browser.py): Debian's own package.
# Installs it with apt-get when it is missing and this runs as root; otherwise says what it
# skipped and why, and exits 0 (the browser tests then skip, printing the same reason).
set -eu

for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        echo "chromium.sh: found $(command -v "$name"): $("$name" --version 2>/dev/null || echo '?')"
        exit 0
    fi
done

if [ "$(id -u)" != 0 ]; then
    echo "chromium.sh: SKIPPED installing chromium: not root (run 'sudo apt-get install chromium');" \
         "the browser tests will be skipped"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium.sh: SKIPPED installing chromium: no apt-get (not Debian/Ubuntu);" \
         "install a Chromium and put it on PATH, or the browser tests will be skipped"
    exit 0
fi

echo "chromium.sh: installing Debian's chromium package (apt-get install chromium)"
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show chromium >/dev/null 2>&1; then
    apt-get update -q
fi
if apt-get install -y -q --no-install-recommends chromium fonts-liberation; then
    echo "chromium.sh: installed $(chromium --version 2>/dev/null || echo chromium)"
else
    echo "chromium.sh: SKIPPED: apt-get install chromium failed (no network or repository?);" \
         "the browser tests will be skipped"
fi
