#!/usr/bin/env bash
# Fonts the browser tests' screenshots need: headless Chromium draws Hangul as empty boxes
# unless a Korean font is installed. fonts-nanum (≈ 10 MB download, 33 MB installed) is a
# third of fonts-noto-cjk's size and covers Hangul. Safe to run again: it installs only what
# is missing.
set -euo pipefail

if fc-list :lang=ko family 2>/dev/null | grep -q .; then
  echo "a Korean font is installed: $(fc-list :lang=ko family | head -n 1)"
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-nanum fontconfig >/dev/null
fc-cache -f >/dev/null
if ! fc-list :lang=ko family | grep -q .; then
  echo "fonts-nanum installed, but fontconfig finds no Korean font" >&2
  exit 1
fi
echo "installed a Korean font: $(fc-list :lang=ko family | head -n 1)"
