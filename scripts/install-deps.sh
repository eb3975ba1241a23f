#!/bin/sh
# Install the Debian packages heapsnap needs to build and test, only those
# missing. Runs as root (CI, fresh machines) or through sudo when available.
set -eu

PACKAGES="build-essential cmake pkg-config libzstd-dev libcjson-dev libgraphviz-dev
libcriterion-dev libcairo2-dev python3-dev python3-numpy python3-jsonschema python3-objgraph clang"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "heapsnap: installing Debian packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "heapsnap: need root to install:$missing" >&2
		exit 1
	fi
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
