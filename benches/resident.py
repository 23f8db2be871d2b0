#!/usr/bin/env python3
"""Which of a running process's binary pages are resident, and whose code
they hold: what an idle `meshwork node`'s RSS beyond its own heap is.

    target/release/meshwork node --no-mdns --no-http --slots 1 \\
        --listen /ip4/127.0.0.1/tcp/0 & sleep 3
    sudo python3 benches/resident.py $! target/release/meshwork

Reads /proc/PID/pagemap (root: the present bit needs it), so it counts the
pages this process has mapped, not what the page cache holds. Each resident
code page is named after the crate with most symbols in it (`nm`)."""
import bisect
import collections
import os
import re
import struct
import subprocess
import sys

PAGE = 4096


def segments(pid, exe):
    """(start, end, file offset, permissions) of exe's mappings in pid."""
    out = []
    for line in open(f"/proc/{pid}/maps"):
        f = line.split()
        if len(f) >= 6 and f[5] == exe:
            a, b = (int(x, 16) for x in f[0].split("-"))
            out.append((a, b, int(f[2], 16), f[1]))
    return out


def resident(pid, segs):
    """(address relative to the load base, permissions) of each present page."""
    base = segs[0][0] - segs[0][2]
    pages = []
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for a, b, _, perm in segs:
            pm.seek(a // PAGE * 8)
            data = pm.read((b - a) // PAGE * 8)
            for i in range((b - a) // PAGE):
                if struct.unpack_from("<Q", data, i * 8)[0] >> 63:
                    pages.append((a + i * PAGE - base, perm))
    return pages


def crate(symbol):
    name = re.sub(r"^<?(impl |dyn )?", "", symbol)
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", name)
    return m.group(0) if m else "?"


def main(pid, exe):
    syms = []
    nm = subprocess.run(["nm", "-n", "-C", "--defined-only", exe], capture_output=True, text=True, check=True)
    for line in nm.stdout.splitlines():
        f = line.split(" ", 2)
        if len(f) == 3 and f[1] in "tTwW":
            syms.append((int(f[0], 16), f[2]))
    addrs = [a for a, _ in syms]
    by_perm, by_crate = collections.Counter(), collections.Counter()
    for addr, perm in resident(pid, segments(pid, exe)):
        by_perm[perm] += PAGE // 1024
        if "x" in perm:
            lo, hi = max(bisect.bisect_right(addrs, addr) - 1, 0), bisect.bisect_left(addrs, addr + PAGE)
            names = collections.Counter(crate(s) for _, s in syms[lo:hi])
            if names:
                by_crate[names.most_common(1)[0][0]] += PAGE // 1024
    for perm, kib in sorted(by_perm.items()):
        print(f"{perm}  {kib / 1024:6.1f} MiB resident")
    print("code pages by crate (KiB):")
    for name, kib in by_crate.most_common(15):
        print(f"  {kib:6d} {name}")


if __name__ == "__main__":
    main(int(sys.argv[1]), os.path.realpath(sys.argv[2]))
