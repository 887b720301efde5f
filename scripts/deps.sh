#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds with (as root; skips what is present).
set -euo pipefail
pkgs=(build-essential cmake pkg-config python3 libeigen3-dev libopenblas-dev libomp-dev
      libxsimd-dev libgtest-dev libbenchmark-dev python3-numpy)
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
