#!/usr/bin/env bash
# Install the Debian packages rill needs, only those missing.
#   scripts/deps.sh build   compiler, cmake, concurrencykit, GoogleTest, hiredis
#   scripts/deps.sh test    build + clang/libFuzzer, python3, nc, socat, xmllint, git,
#                           curl and promtool (prometheus) for the /metrics tests,
#                           redis-server for the scale-out tests
# Sourced by scripts/example.sh and scripts/test.sh (rill_deps PROFILE), or run
# on its own. Needs root (or sudo) only when something is missing.

rill_deps_build=(gcc g++ cmake make pkg-config libck-dev libgtest-dev googletest libhiredis-dev)
rill_deps_test=("${rill_deps_build[@]}" clang libclang-rt-14-dev python3 netcat-openbsd
                socat libxml2-utils git curl prometheus redis-server)

rill_deps() {
    local profile=${1:-test} pkg
    local -a want missing=()
    case $profile in
        build) want=("${rill_deps_build[@]}") ;;
        test) want=("${rill_deps_test[@]}") ;;
        *) echo "deps: unknown profile '$profile' (build|test)" >&2; return 2 ;;
    esac
    for pkg in "${want[@]}"; do
        # "install ok installed" only: a removed package leaves "deinstall ok config-files".
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "deps: all ${#want[@]} packages present"
        return 0
    fi
    echo "deps: installing ${missing[*]}"
    local -a sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            echo "deps: missing packages and not root: run as root or with sudo" >&2
            return 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        { echo "deps: apt-get update failed" >&2; return 1; }
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}" ||
        { echo "deps: apt-get install failed" >&2; return 1; }
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    rill_deps "${1:-test}"
fi
