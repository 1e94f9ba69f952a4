/* The x86-64 context switch (System V ABI). fiber.h says why assembly.
 *
 * void conc__ctx_switch(void **save, void *sp)
 *   Pushes what a callee must preserve (rbp, rbx, r12-r15, then 8 bytes
 *   holding MXCSR and the x87 control word), stores rsp in *save, loads
 *   `sp` (a context saved the same way, or a new stack's initial frame
 *   from fiber.c) and pops it. Caller-saved registers are the compiler's
 *   business: this is a call. The saved frame, from the stack pointer up:
 *
 *     0 MXCSR (4 bytes), x87 control word (2), padding (2)
 *     8 r15   16 r14   24 r13   32 r12   40 rbx   48 rbp   56 return address
 *
 *   fiber.c reads rbp and the return address at 48 and 56 to walk a
 *   suspended fiber's stack.
 *
 * void conc__ctx_entry(void)
 *   Where a new stack's first switch returns: calls r13(r12), the fiber's
 *   start function and record, with rsp 16-byte aligned and rbp pointing at
 *   the zeroed base frame. The start function never returns. The return
 *   address is marked undefined so that DWARF unwinders (gdb) stop here. */
#if defined(__x86_64__) && !defined(CONC_FIBER_PORTABLE)

    .text
    .globl  conc__ctx_switch
    .hidden conc__ctx_switch
    .type   conc__ctx_switch, @function
    .p2align 4
conc__ctx_switch:
    .cfi_startproc
#if defined(__CET__) && (__CET__ & 1)
    endbr64
#endif
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)

    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    /* Now on the other stack, whose frame has the same layout, so the
     * unwind rules above still describe it. */

    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    ret
    .cfi_endproc
    .size   conc__ctx_switch, .-conc__ctx_switch

    .globl  conc__ctx_entry
    .hidden conc__ctx_entry
    .type   conc__ctx_entry, @function
    .p2align 4
conc__ctx_entry:
    .cfi_startproc
    .cfi_undefined %rip
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   conc__ctx_entry, .-conc__ctx_entry

#endif

/* The stack stays non-executable in every object this file is part of. */
    .section .note.GNU-stack, "", %progbits
