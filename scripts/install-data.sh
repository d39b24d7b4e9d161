#!/usr/bin/env bash
# Make the raw data of a dataset available. Only Fashion-MNIST (the embedded default) can be installed
# here: Debian packages it as `dataset-fashion-mnist` (IDX files under /usr/share/datasets/fashion-mnist).
# CelebA and LSUN must be downloaded by the user and pointed at with PRSR_DATA or --data-root.
set -euo pipefail
dataset="${1:-fashion-mnist}"
[ "$dataset" = "fashion-mnist" ] || exit 0
if [ -n "${PRSR_DATA:-}" ]; then echo "install-data: using PRSR_DATA=$PRSR_DATA"; exit 0; fi
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ] || [ -f "$dir/train-images-idx3-ubyte" ]; then
  echo "install-data: Fashion-MNIST found in $dir"; exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "install-data: installing Debian's dataset-fashion-mnist"
  apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null
  echo "install-data: Fashion-MNIST installed in $dir"
else
  echo "install-data: Fashion-MNIST is not in $dir. Install it with" >&2
  echo "    sudo apt-get install dataset-fashion-mnist" >&2
  echo "or set PRSR_DATA to a folder holding the four IDX files (train-images-idx3-ubyte[.gz], ...)." >&2
  exit 1
fi
