#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds with (as root; skips what is present).
# Extra package names given as arguments are installed too (test.sh adds chromium, which
# renders the HTML report in a test).
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang python3 python3-numpy python3-dev python3-pytest
      pybind11-dev python3-pybind11 libeigen3-dev libopenblas-dev
      libomp-dev libxsimd-dev libgtest-dev libbenchmark-dev "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
