#!/bin/sh
# Debian's Chromium for the explorer's browser tests (tests/web/test_browser.py drives it through
# Playwright with executable_path=/usr/bin/chromium; Playwright's own browser download is not
# used). Idempotent: does nothing where /usr/bin/chromium already exists.
set -eu
if [ -x /usr/bin/chromium ]; then
    echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo unknown version))"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
/usr/bin/chromium --version
