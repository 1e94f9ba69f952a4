"""Reads conc's public headers (include/conc/*.h) into declarations.

Shared by tools/gen_null_test.py and tools/check_header_comments.py. It
knows the few forms conc's headers use and nothing more: a declaration it
cannot read is an error (ParseError), never skipped, so a function added
later cannot escape the checks built on it.

Each declaration is `CONC_EXTERN <return type> <name>(<parameters>)
[CONC_PRINTF(...)];`, parameters being `<type> <name>` or `<type>
<name>[]`, or `...`. Its comment is the block comment just above it, or
above the group of declarations it opens a line in (declarations written
one after another, with nothing between them, share the comment above
the first).
"""
import glob
import os
import re


class ParseError(Exception):
    pass


class Param:
    def __init__(self, ctype, name):
        self.type = ctype  # normalized: "const conc_buf *"
        self.name = name

    @property
    def is_pointer(self):
        return self.type.endswith('*')

    def __repr__(self):
        return '%s %s' % (self.type, self.name)


class Decl:
    def __init__(self, header, line, ret, name, params, variadic, comment):
        self.header = header  # "queue.h"
        self.line = line
        self.ret = ret  # normalized return type: "int", "const char *"
        self.name = name
        self.params = params
        self.variadic = variadic
        self.comment = comment  # text of its comment, or None

    def where(self):
        return '%s:%d: %s' % (self.header, self.line, self.name)


# Macros that may stand in a declaration and mean nothing to a caller.
ATTRIBUTE_MACROS = ('CONC_EXTERN', 'CONC_NORETURN', 'CONC_NODISCARD')


def normalize_type(t):
    t = re.sub(r'\s+', ' ', t).strip()
    t = re.sub(r'\s*\*\s*', ' *', t)
    t = t.replace('* *', '**').replace('* *', '**')
    return t.strip()


def split_top(s, sep=','):
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch in '([':
            depth += 1
        elif ch in ')]':
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_param(text, where):
    text = text.strip()
    if '(' in text:
        raise ParseError('%s: a function-pointer parameter written out (%r): '
                         'use a typedef' % (where, text))
    m = re.match(r'^(?P<type>.*?[\s*])(?P<name>[A-Za-z_]\w*)\s*(?P<arr>\[\s*\])?$',
                 text)
    if not m or not m.group('type').strip():
        raise ParseError('%s: cannot read parameter %r (it needs a type and '
                         'a name)' % (where, text))
    ctype = m.group('type')
    if m.group('arr'):
        ctype += ' *'
    return Param(normalize_type(ctype), m.group('name'))


DECL_RE = re.compile(
    r'^(?P<ret>[A-Za-z_][\w\s*]*?[\s*])(?P<name>conc_\w+)\s*'
    r'\((?P<params>[^()]*)\)\s*'
    r'(?P<attrs>(CONC_PRINTF\s*\(\s*\d+\s*,\s*\d+\s*\)\s*)*)$', re.S)


def parse_decl(text, header, line):
    where = '%s:%d' % (header, line)
    body = text
    for mac in ATTRIBUTE_MACROS:
        body = re.sub(r'\b%s\b' % mac, ' ', body)
    body = ' '.join(body.split())
    m = DECL_RE.match(body)
    if not m:
        raise ParseError('%s: cannot read the declaration %r' % (where, body))
    params, variadic = [], False
    raw = m.group('params').strip()
    if raw not in ('void', ''):
        for p in split_top(raw):
            if p.strip() == '...':
                variadic = True
                continue
            params.append(parse_param(p, '%s: %s' % (where, m.group('name'))))
    elif raw == '':
        raise ParseError('%s: %s() needs (void)' % (where, m.group('name')))
    return Decl(header, line, normalize_type(m.group('ret')), m.group('name'),
                params, variadic, None)


def scan(text):
    """Yields ('comment', start, end, text) and ('decl', start, end, text)
    in order, ignoring preprocessor lines."""
    i, n = 0, len(text)
    while i < n:
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            if j < 0:
                raise ParseError('unterminated comment')
            yield ('comment', i, j + 2, text[i + 2:j])
            i = j + 2
        elif text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            yield ('comment', i, j, text[i + 2:j])
            i = j
        elif text[i] == '#' and (i == 0 or text[i - 1] == '\n'):
            # A preprocessor line, with its continuations.
            j = i
            while True:
                k = text.find('\n', j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != '\\':
                    break
                j = k + 1
            i = k
        elif text.startswith('CONC_EXTERN', i) and (i == 0 or text[i - 1] in '\n '):
            j = i
            # The declaration ends at the first ';' outside comments.
            out = ''
            while j < n and text[j] != ';':
                if text.startswith('/*', j):
                    k = text.find('*/', j + 2)
                    j = k + 2
                    continue
                out += text[j]
                j += 1
            if j >= n:
                raise ParseError('a declaration without its ";"')
            yield ('decl', i, j + 1, out)
            i = j + 1
        else:
            i += 1


def parse_header(path):
    text = open(path, encoding='utf-8').read()
    header = os.path.basename(path)
    decls = []
    last_comment = None  # (end, text)
    group_comment = None  # the comment of the group being read
    prev_end = None  # end of the previous item
    for kind, start, end, body in scan(text):
        gap = text[prev_end:start] if prev_end is not None else ''
        if kind == 'comment':
            last_comment = (end, body)
            group_comment = None
        else:
            line = text.count('\n', 0, start) + 1
            d = parse_decl(body, header, line)
            blank_gap = '\n\n' in gap
            if last_comment and last_comment[0] == prev_end and not blank_gap:
                d.comment = last_comment[1]
                group_comment = d.comment
            elif group_comment is not None and not blank_gap and \
                    decls and prev_end == decls[-1]._end:
                d.comment = group_comment
            else:
                group_comment = None
            d._end = end
            decls.append(d)
        prev_end = end
    return decls


FN_TYPEDEF_RE = re.compile(r'\btypedef\b[^;]*?\(\s*\*\s*(conc_\w+)\s*\)\s*\(')


def function_pointer_types(include_dir):
    """The names of the function-pointer types the headers declare
    (`typedef int (*conc_x_fn)(...)`): a parameter of one is a pointer
    too, whatever its name ends in."""
    names = set()
    for path in sorted(glob.glob(os.path.join(include_dir, 'conc', '*.h'))):
        names.update(FN_TYPEDEF_RE.findall(open(path, encoding='utf-8').read()))
    return names


def parse_all(include_dir):
    decls = []
    for path in sorted(glob.glob(os.path.join(include_dir, 'conc', '*.h'))):
        decls.extend(parse_header(path))
    names = {}
    for d in decls:
        if d.name in names:
            raise ParseError('%s: declared twice' % d.where())
        names[d.name] = d
    return decls


if __name__ == '__main__':
    import sys
    root = sys.argv[1] if len(sys.argv) > 1 else 'include'
    for d in parse_all(root):
        print('%-28s %-16s %s(%s%s)%s' % (d.where().split(':')[0], d.ret, d.name,
              ', '.join(map(repr, d.params)), ', ...' if d.variadic else '',
              '' if d.comment else '   [no comment]'))
