#!/bin/sh
# Compiles and runs the README's complete program (the first C block with a
# main), against the headers and static library of this build, so the tour
# cannot drift from the API.
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk '/^```c$/{on=1; buf=""; next} /^```$/{if(on && buf ~ /\nmain\(void\)/){print buf; exit} on=0; next} on{buf=buf "\n" $0}' \
    "$src/README.md" >"$tmp/readme.c"
grep -q 'main(void)' "$tmp/readme.c" || { echo "no complete program in README"; exit 1; }
cc -std=c11 -Wall -Wextra -Werror -I"$src/include" "$tmp/readme.c" \
    "$build/libconc.a" -lpthread -lssl -lcrypto -o "$tmp/readme"
out=$("$tmp/readme")
[ "$out" = "0" ] || { echo "README program printed: $out"; exit 1; }
echo "README program compiles and prints 0"

# The README's way of building against the build tree, without
# installing: the uninstalled pkg-config file.
PKG_CONFIG_PATH=$build cc -std=c11 -Wall -Werror "$tmp/readme.c" \
    $(PKG_CONFIG_PATH=$build pkg-config --cflags --libs conc) -o "$tmp/readme2"
out=$("$tmp/readme2")
[ "$out" = "0" ] || { echo "README program (build tree) printed: $out"; exit 1; }
echo "README program builds from the build tree with pkg-config"
