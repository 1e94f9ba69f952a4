#!/bin/sh
# The public headers compile as C++: each header on its own, then a program
# that includes conc.h and calls into the library, linked against this
# build's static library (a declaration without C linkage would not link).
# Usage: cxx_check.sh CXX SRC_DIR [LIBCONC_A]
set -eu
cxx=$1
src=$2
lib=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags="-std=c++11 -Wall -Wextra -Werror -pedantic -I$src/include"
for h in "$src"/include/conc/*.h; do
    name=$(basename "$h")
    printf '#include "conc/%s"\n#include "conc/%s"\n' "$name" "$name" \
        >"$tmp/one.cpp"
    $cxx $flags -fsyntax-only "$tmp/one.cpp" || {
        echo "conc/$name does not compile as C++"
        exit 1
    }
done
cat >"$tmp/prog.cpp" <<'CPP'
#include <cstdio>
#include <cstring>

#include "conc.h"

int
main()
{
    conc_event *ev = nullptr;
    if (conc_event_new(nullptr, &ev) != 0)
        return 1;
    conc_event_set(ev);
    int rc = conc_event_wait(ev, CONC_FOREVER);
    conc_event_free(ev);
    std::printf("%s\n", conc_err_name(rc));
    return std::strcmp(conc_strerror(CONC_EEMPTY), "") == 0;
}
CPP
if [ -n "$lib" ]; then
    $cxx $flags "$tmp/prog.cpp" "$lib" -lpthread -o "$tmp/prog"
    out=$("$tmp/prog")
    [ "$out" = "0" ] || { echo "C++ program printed: $out"; exit 1; }
else
    $cxx $flags -fsyntax-only "$tmp/prog.cpp"
fi
echo "the headers compile as C++"
