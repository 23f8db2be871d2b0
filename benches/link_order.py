#!/usr/bin/env python3
"""The functions of one binary that a callgrind profile saw run, in the
order the profile first names them, one symbol (mangled) a line: a symbol
ordering file for the linker (see benches/link_order.sh).

    python3 benches/link_order.py callgrind.out /abs/path/to/meshwork"""
import re
import sys

# callgrind names an object or function once, `ob=(3) /path` or
# `cfn=(12) name`, and afterwards by number only: `ob=(3)`, `fn=(12)`.
NAMED = re.compile(r"^(ob|cob|fn|cfn)=\((\d+)\)(?: (.*))?$")


def functions(profile, binary):
    objects, names = {}, {}
    current, seen = None, {}
    for line in open(profile):
        m = NAMED.match(line.rstrip("\n"))
        if not m:
            continue
        kind, key, name = m.groups()
        table = objects if kind.endswith("ob") else names
        if name:
            table[key] = name
        if kind == "ob":
            current = objects[key]
        elif kind == "fn" and current == binary:
            seen.setdefault(names[key], None)
    return list(seen)


if __name__ == "__main__":
    for symbol in functions(sys.argv[1], sys.argv[2]):
        print(symbol)
