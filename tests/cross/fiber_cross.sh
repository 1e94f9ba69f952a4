#!/bin/sh
# Builds tests/cross/fiber_smoke.c with the fibers (the assembly and the C,
# warnings as errors) by compiler CC and runs it: under EMULATOR for
# another architecture (a cross compiler and qemu), directly when EMULATOR
# is "native", or not at all when it is "none". EXTRA_CFLAGS may choose
# the portable switch (-DCONC_FIBER_PORTABLE).
# Usage: fiber_cross.sh CC SRC_DIR OUT_DIR EMULATOR [EXTRA_CFLAGS]
set -eu
cc=$1
src=$2
out=$3
emu=$4
extra=${5:-}
mkdir -p "$out"
flags="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow
 -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Werror
 -fno-omit-frame-pointer -fno-optimize-sibling-calls
 -I$src/include -I$src/src $extra"
# shellcheck disable=SC2086
$cc $flags -static -o "$out/fiber_smoke" \
    "$src/tests/cross/fiber_smoke.c" "$src/src/unix/fiber.c" \
    "$src/src/unix/stack.c" "$src/src/unix/fiber_slab.c" \
    "$src/src/unix/ctx_aarch64.S" \
    "$src/src/unix/ctx_x86_64.S" "$src/src/core/panic.c" -lm -lpthread
echo "fiber_cross: built with $cc $extra"
case $emu in
none) echo "fiber_cross: no emulator, built only" ;;
native) "$out/fiber_smoke" ;;
*) "$emu" "$out/fiber_smoke" ;;
esac
