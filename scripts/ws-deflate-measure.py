#!/usr/bin/env python3
# permessage-deflate payload bytes per event, with and without server
# context takeover, on the event bytes feedgate sends (json: the v1 event
# object; lean: the data), for the bench's payload kinds. zlib level 6.
# Frame headers are not included (2 bytes up to 125, 4 up to 64 KiB).
import random, zlib
random.seed(7)
N = 1000
T0 = 1764072000000000
def padding(n):
    head = '{"n":%d,"t":%d,"pad":"' % (n, T0 + n * 100000)
    return head + 'x' * (100 - len(head) - 2) + '"}'
def ticker(n):
    mid = 100 + random.randrange(2000) / 100; sp = 0.01 + random.randrange(4) / 100
    return '{"n":%d,"t":%d,"symbol":"FGT","bid":%.2f,"ask":%.2f,"last":%.2f,"size":%d,"volume":%d}' % (
        n, T0 + n * 100000, mid - sp / 2, mid + sp / 2, mid, 1 + random.randrange(500), 1000000 + n * 250)
WORDS = "the deploy is green again can you check latency on staging before lunch thanks looks good to me ship it".split()
def chat(n):
    return '{"n":%d,"t":%d,"type":"message","room":"general","user":{"id":%d,"name":"ana"},"text":"%s","reactions":[]}' % (
        n, T0 + n * 100000, 100 + random.randrange(8), " ".join(random.choice(WORDS) for _ in range(6 + random.randrange(14))))
def doc(n):
    items = []
    while len(",".join(items)) < 880:
        i = len(items)
        items.append('{"id":%d,"sku":"SKU-%05d","name":"item %d","price":%d.%02d,"qty":%d,"active":%s}' % (
            n * 100 + i, random.randrange(100000), random.randrange(1000), random.randrange(500), random.randrange(100),
            random.randrange(50), random.choice(["true", "false"])))
    return '{"n":%d,"t":%d,"items":[%s]}' % (n, T0 + n * 100000, ",".join(items))
def deflate_once(b):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return len(c.compress(b) + c.flush(zlib.Z_SYNC_FLUSH)) - 4
print(f"{'payload':8} {'enc':5} {'plain':>7} {'no takeover':>12} {'takeover':>9}  (B/event, payload of the frame)")
for kind, gen in [("padding", padding), ("ticker", ticker), ("chat", chat), ("doc", doc)]:
    for enc in ["json", "lean"]:
        msgs = []
        for n in range(1, N + 1):
            d = gen(n)
            msgs.append((('{"topic":"bench","seq":%d,"time":%d,"data":%s}' % (n, T0 + n * 100000, d)) if enc == "json" else d).encode())
        plain = sum(map(len, msgs)) / N
        once = sum(min(deflate_once(m), len(m)) for m in msgs) / N
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        take = 0
        for m in msgs:
            take += len(c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)) - 4
        print(f"{kind:8} {enc:5} {plain:7.1f} {once:12.1f} {take / N:9.1f}")
