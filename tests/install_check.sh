#!/bin/sh
# Installs conc into a temporary prefix, then builds and runs a program
# against it twice: with pkg-config and with CMake's find_package.
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cat >"$tmp/app.c" <<'C'
#include <conc.h>
#include <stdio.h>
static int work(void *arg) { *(int *)arg = 42; return 0; }
int main(void)
{
    int v = 0, status = -1;
    conc_thread *t;
    if (conc_thread_start(work, &v, NULL, &t) != 0) return 1;
    if (conc_thread_join(t, CONC_FOREVER, &status) != 0) return 1;
    conc_thread_free(t);
    printf("%d %d %s\n", v, status, conc_err_name(CONC_EEMPTY));
    return v == 42 && status == 0 ? 0 : 1;
}
C
libdir=$(find "$tmp/prefix" -name conc.pc -path '*pkgconfig*' -exec dirname {} \;)
PKG_CONFIG_PATH=$libdir cc -std=c11 "$tmp/app.c" -o "$tmp/app" \
    $(PKG_CONFIG_PATH=$libdir pkg-config --cflags --libs conc) \
    -Wl,-rpath,"$(dirname "$libdir")"
out=$("$tmp/app")
[ "$out" = "42 0 CONC_EEMPTY" ] || { echo "pkg-config app printed: $out"; exit 1; }
mkdir "$tmp/cm"
cat >"$tmp/cm/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.18)
project(app C)
find_package(conc REQUIRED)
add_executable(app ../app.c)
target_link_libraries(app PRIVATE conc::conc)
C
cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm/b" >/dev/null
out=$("$tmp/cm/b/app")
[ "$out" = "42 0 CONC_EEMPTY" ] || { echo "cmake app printed: $out"; exit 1; }
echo "install check: pkg-config and find_package builds run"
