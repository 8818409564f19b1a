#!/usr/bin/env python3
"""cg_calls.py FILE REGEX: the calls a callgrind dump records to the functions whose (mangled)
names match REGEX, summed over their callers. bench/callgrind.sh counts fluxgate's
`RequestParser.parseHead` (one call per request) to check that a dump holds the N requests it
sent: `callgrind_control -z` can land late on a loaded machine (the worker idles in epoll_wait
until a request wakes it), and a dump that holds fewer requests undercounts."""
import re, sys

path, rx = sys.argv[1], re.compile(sys.argv[2])
names, calls, callee = {}, 0, None
for line in open(path, errors="replace"):
    m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
    if m:
        if m.group(3):
            names[m.group(2)] = m.group(3)
        callee = names.get(m.group(2), "") if m.group(1) == "cfn" else None
    elif callee is not None and line.startswith("calls="):
        if rx.search(callee):
            calls += int(line[6:].split()[0])
        callee = None
print(calls)
