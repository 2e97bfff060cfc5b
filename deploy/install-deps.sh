#!/usr/bin/env bash
# Installs what nbad needs to build, run and test on Debian 12 (as root).
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libevent-dev            # the network loop: listener and one event_base per worker
  libprotobuf-c-dev protobuf-c-compiler   # the wire protocol and stored records
  liblmdb-dev lmdb-utils  # the memory-mapped customer database
  libyaml-dev             # rule files and the config file
  libjansson-dev          # nbactl --json
  liburcu-dev             # swapping the serving ruleset on reload without locking readers
  libcmocka-dev           # unit tests
  python3-protobuf protobuf-compiler  # the contract test: a Python client from proto/nba.proto
  clang-format            # the code style check (.clang-format)
  clang libclang-rt-14-dev  # fuzzing: libFuzzer targets under tests/fuzz/
  libssl-dev openssl      # TLS on the binary protocol; the tests make their certificates
  valgrind                # memcheck run of the integration test (ctest -L valgrind)
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get needs it)" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
