/* The aarch64 context switch (AAPCS64). fiber.h says why assembly.
 *
 * void conc__ctx_switch(void **save, void *sp)
 *   Stores what a callee must preserve (x19-x28, the frame pointer x29,
 *   the link register x30, the low halves d8-d15 of v8-v15, and FPCR) in
 *   176 bytes below sp, stores sp in *save, loads `sp` (a context saved
 *   the same way, or a new stack's initial frame from fiber.c), restores
 *   it and returns through its x30. The saved frame, from sp up:
 *
 *     0 x19 x20   16 x21 x22   32 x23 x24   48 x25 x26   64 x27 x28
 *    80 x29 x30   96 d8 d9    112 d10 d11  128 d12 d13  144 d14 d15
 *   160 FPCR     168 padding
 *
 *   fiber.c reads x29 and x30 at 80 and 88 to walk a suspended fiber's
 *   stack.
 *
 * void conc__ctx_entry(void)
 *   Where a new stack's first switch returns: calls x20(x19), the fiber's
 *   start function and record, with sp 16-byte aligned and x29 pointing at
 *   the zeroed base frame record. The start function never returns. The
 *   link register is marked undefined so that DWARF unwinders stop here. */
#if defined(__aarch64__) && !defined(CONC_FIBER_PORTABLE)

    .text
    .globl  conc__ctx_switch
    .hidden conc__ctx_switch
    .type   conc__ctx_switch, %function
    .p2align 4
conc__ctx_switch:
    .cfi_startproc
    sub     sp, sp, #176
    .cfi_def_cfa_offset 176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]

    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    /* Now on the other stack, whose frame has the same layout. */

    ldr     x9, [sp, #160]
    msr     fpcr, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #176
    .cfi_def_cfa_offset 0
    .cfi_restore x29
    .cfi_restore x30
    ret
    .cfi_endproc
    .size   conc__ctx_switch, .-conc__ctx_switch

    .globl  conc__ctx_entry
    .hidden conc__ctx_entry
    .type   conc__ctx_entry, %function
    .p2align 4
conc__ctx_entry:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x19
    blr     x20
    brk     #1
    .cfi_endproc
    .size   conc__ctx_entry, .-conc__ctx_entry

#endif

/* The stack stays non-executable in every object this file is part of. */
    .section .note.GNU-stack, "", %progbits
