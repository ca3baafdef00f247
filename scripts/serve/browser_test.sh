#!/usr/bin/env bash
# The web page of `visage serve` in a real browser: installs Debian's
# chromium + chromium-driver when missing (apt, needs root), then runs the
# ignored browser test, which enrols two people from the page, searches a
# photo of both and writes a screenshot (target/visage-serve-page.png, or
# $VISAGE_PAGE_SCREENSHOT).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
cargo test -p visage-serve --test page_browser -- --ignored
