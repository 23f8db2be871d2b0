#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/ from the hex examples in PROTOCOL.md (which a
unit test keeps equal to the real encoder), so every target starts from
real encoded messages rather than random bytes."""
import pathlib, re

root = pathlib.Path(__file__).resolve().parent
doc = (root.parent / "PROTOCOL.md").read_text()
ex = {name: bytes.fromhex("".join(block.split()))
      for name, block in re.findall(r"<!-- example: ([a-z-]+) -->\n```hex\n(.*?)```", doc, re.S)}
requests = [ex[k] for k in ex if k.endswith("-request")]
responses = [ex[k] for k in ex if k.endswith("-response")]
frames = [ex[k] for k in ex if k.endswith("-frame")]

def frame(b):
    return len(b).to_bytes(4, "big") + b

def record(op, peer, body=b""):
    assert len(body) < 256
    return bytes([op, peer, len(body)]) + body

seeds = {
    "request": requests,
    "response": responses,
    "advert": [ex["advert"]],
    "frame": [frame(b) for b in frames],
    # The same frames back to back, in parts of 1, 3 and 7 bytes (the first
    # byte says how many part sizes follow).
    "frame_stream": [bytes([2, 1, 3]) + b"".join(frame(b) for b in frames), bytes([0, 7]) + frame(frames[0])],
    "machine": [
        record(0, 1) + record(2, 1, ex["advert"]) + record(5, 0) + record(4, 0, ex["results-response"]),
        record(0, 2) + record(3, 2, ex["run-request"]) + record(5, 0) + record(3, 2, ex["cancel-request"]),
        record(0, 1) + record(2, 1, ex["advert"]) + record(4, 0, ex["rejected-response"]) + record(1, 1) + record(5, 9),
    ],
}
for target, items in seeds.items():
    d = root / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    for i, b in enumerate(items):
        (d / f"seed-{i}").write_bytes(b)
    print(target, len(items))
