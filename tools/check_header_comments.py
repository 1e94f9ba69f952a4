#!/usr/bin/env python3
"""Checks that every public declaration's comment states its contract.

Reads include/conc/*.h through tools/conc_api.py (a declaration it cannot
read is an error) and checks each CONC_EXTERN declaration's comment, its
own or that of the group it belongs to (declarations written one after
another under one comment), for the markers docs/conventions.md lists:

  - every declaration has a comment;
  - errors: a function returning int names an error code ("CONC_E..."),
    refers to another function's errors ("Errors as ...", "errors of"),
    or says that it "never fails";
  - ownership: a function that returns a pointer, or has an out-parameter
    that receives a pointer (a `**` parameter), says who owns it, with one
    of "borrow", "own" (owns, ownership, owned), "new", "free", "caller",
    "copied", "static";
  - threads: the comment has a sentence saying which threads may call it,
    with the word "thread".

Prints each omission and exits 1 if there is any.

usage: check_header_comments.py INCLUDE_DIR
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conc_api  # noqa: E402

ERROR_MARKERS = re.compile(
    r'CONC_E[A-Z]+|[Ee]rrors( and \w+)? as|errors of|[Nn]ever fails')
OWNERSHIP_MARKERS = re.compile(
    r'borrow|\bown|\bnew\b|free|caller|copied|static', re.I)
THREAD_MARKERS = re.compile(r'\bthreads?\b', re.I)


def problems(d):
    c = d.comment
    if c is None:
        return ['no comment']
    out = []
    if d.ret == 'int' and not ERROR_MARKERS.search(c):
        out.append('does not state its errors (CONC_E..., "Errors as ...")')
    if (d.ret.endswith('*') or any(p.type.endswith('**') for p in d.params)) \
            and not OWNERSHIP_MARKERS.search(c):
        out.append('does not say who owns the pointer it gives (borrowed, '
                   'new ... freed with ..., caller, static)')
    if not THREAD_MARKERS.search(c):
        out.append('does not say which threads may call it ("Any thread.")')
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        decls = conc_api.parse_all(sys.argv[1])
    except conc_api.ParseError as e:
        sys.exit('check_header_comments.py: %s' % e)
    bad = 0
    for d in decls:
        for p in problems(d):
            print('%s: %s' % (d.where(), p))
            bad += 1
    print('%d declarations checked, %d omissions' % (len(decls), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
