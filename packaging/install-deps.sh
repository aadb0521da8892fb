#!/usr/bin/env bash
# Installs every Debian 12 package QuantScope needs to build, run and test.
# Idempotent; run as root (or through sudo). Used by README's commands and by .ci/run.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # engine
  libtorch-dev python3-torch python3-torchvision
  libopenblas0-pthread          # without it libtorch falls back to reference BLAS (~18x slower)
  libopencv-dev libhdf5-dev libjpeg-dev   # libjpeg: strict check of JPEG inputs
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libonnx-dev libprotobuf-dev   # ONNX import: the ONNX protobuf classes, checker, shape inference
  # GUI
  qt6-base-dev qt6-svg-dev libqcustomplot-dev libqcustomplot2.1-qt6
  libgl-dev
  # tests: real readers of our dumps, real windows
  hdf5-tools python3-h5py python3-numpy python3-pil
  clang libclang-rt-14-dev      # the fuzzer build (CMake preset "fuzz", docs/robustness.md)
  xvfb xauth fonts-dejavu-core   # a real window under Xvfb, with text
  slurm-wlm munge                # a single-node Slurm, started by the scale test (docs/scale.md)
  python3-onnx python3-opencv   # ONNX tests: crafted models, OpenCV DNN as the float reference
  libonnx-testdata              # ONNX's own backend node tests (CTest onnx_conformance)
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
