#!/usr/bin/env bash
# Install a configured and built rill into a temporary prefix and prove that
# a program built only with `pkg-config --cflags --libs rill` compiles in strict
# C11, links through the soname (librill.so.0.2) and runs; then that the
# README's example builds out of the tree and prints what the README shows.
# Usage: scripts/install_check.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
build=${1:?usage: install_check.sh BUILD_DIR}
prefix=$(mktemp -d "${TMPDIR:-/tmp}/rill-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT

fail() { echo "install check: $*" >&2; exit 1; }

echo "+ cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null

pc=$(find "$prefix" -name rill.pc -path '*/pkgconfig/*' | head -n1)
[ -n "$pc" ] || fail "no rill.pc installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir rill)
flags=$(pkg-config --cflags --libs rill) || fail "pkg-config cannot resolve rill.pc"
echo "pkg-config --cflags --libs rill: $flags"

[ -f "$prefix/include/rill.h" ] || fail "include/rill.h not installed"
for h in "$root"/include/rill/*.h; do
    # rill/redis.h goes with librill_redis, built only where hiredis is found.
    [ "$(basename "$h")" = redis.h ] && [ ! -e "$libdir/librill_redis.so" ] && continue
    [ -f "$prefix/include/rill/$(basename "$h")" ] || fail "rill/$(basename "$h") not installed"
done
[ -L "$libdir/librill.so" ] || fail "$libdir/librill.so is not a symlink"
[ -L "$libdir/librill.so.0.2" ] || fail "$libdir/librill.so.0.2 (soname link) missing"
soname=$(readelf -d "$libdir/librill.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = librill.so.0.2 ] || fail "SONAME is '$soname', want librill.so.0.2"

# Only the public API leaves the library: rill_ names, never rill__ internals.
# Every exported symbol is rill_ API, or a rill__ helper that an inline function
# of an installed header calls (so it must be exported) and that the header declares.
leaked=""
for sym in $(nm -D --defined-only "$libdir/librill.so" | awk '{print $3}'); do
    case $sym in
    rill_[a-z0-9]*) ;;
    rill__*) grep -rqw "$sym" "$prefix/include/rill" || leaked="$leaked $sym" ;;
    *) leaked="$leaked $sym" ;;
    esac
done
[ -z "$leaked" ] || fail "symbols exported outside the installed API:$leaked"

exe=$prefix/install_check
# shellcheck disable=SC2086  # flags is a word list from pkg-config
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$root/tests/install_check/main.c" $flags -o "$exe" ||
    fail "cannot compile a C11 program against the installed headers"
readelf -d "$exe" | grep -q 'NEEDED.*\[librill\.so\.0\.2\]' || fail "program does not need librill.so.0.2"
out=$(LD_LIBRARY_PATH=$libdir "$exe") || fail "installed program failed"
echo "$out"
[ "$out" = "rill $(pkg-config --modversion rill) installed and working" ] || fail "unexpected output"

# The README's example, as a user copies it: taken from README.md, built out
# of the tree (no RILL_DATA_DIR from rill's build) with only pkg-config's
# flags, run from the repository root through LD_LIBRARY_PATH as the README
# says, and its output compared with the output the README shows.
app=$prefix/readme_app
awk '/^## A pipeline in C/{s=1} s&&/^```c$/{c=1; next} c&&/^```$/{exit} c' "$root/README.md" >"$app.c"
grep -q 'int main' "$app.c" || fail "no C program found in README.md's 'A pipeline in C'"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$app.c" $flags -o "$app" ||
    fail "the README's example does not compile out of the tree"
want=$(awk '/^\$ build-ci-release\/readme_pipeline$/{s=1; next} s&&/^```$/{exit} s' "$root/README.md")
[ -n "$want" ] || fail "no expected output found in README.md"
got=$(cd "$root" && LD_LIBRARY_PATH=$libdir "$app") || fail "the README's example failed"
echo "$got"
[ "$got" = "$want" ] || fail "the README's example printed other counts than README.md shows"
echo "install check: ok"
