# SSE compression, three ways, on the exact SSE bytes feedgate writes
# (one chunk per event, as at a low publish rate): none; per-connection
# streaming gzip (one compressor per connection, sync flush per chunk);
# each event deflated once on its own and shared by every stream.
import zlib, random, json, sys
random.seed(7)
N = 1000
def ticker(n):
    mid = 100 + random.randrange(2000) / 100; sp = 0.01 + random.randrange(4) / 100
    return '{"n":%d,"t":%d,"symbol":"FGT","bid":%.2f,"ask":%.2f,"last":%.2f,"size":%d,"volume":%d}' % (
        n, 1764072000000000 + n * 100000, mid - sp / 2, mid + sp / 2, mid, 1 + random.randrange(500), 1000000 + n * 250)
def padding(n):
    head = '{"n":%d,"t":%d,"pad":"' % (n, 1764072000000000 + n * 100000)
    return head + 'x' * (100 - len(head) - 2) + '"}'
def chat(n):
    w = "the deploy is green again can you check latency on staging before lunch thanks".split()
    return '{"n":%d,"t":%d,"type":"message","room":"general","user":{"id":%d,"name":"ana"},"text":"%s"}' % (
        n, 1764072000000000 + n * 100000, 100 + random.randrange(8), " ".join(random.choice(w) for _ in range(6 + random.randrange(14))))
def chunk(b):  # HTTP/1.1 chunk framing
    return b'%x\r\n' % len(b) + b + b'\r\n'
for kind, gen in [("padding", padding), ("ticker", ticker), ("chat", chat)]:
    for enc in ["json", "lean"]:
        events = []
        for n in range(1, N + 1):
            data = gen(n)
            if enc == "json":
                ev = '{"topic":"bench","seq":%d,"time":%d,"data":%s}' % (n, 1764072000000000 + n * 100000, data)
                events.append(('id: 9f2c4e01a7b3d5e8:%d\ndata: %s\n\n' % (n, ev)).encode())
            else:
                events.append(('id:%d\ndata:%s\n\n' % (n, data)).encode())
        plain = sum(len(chunk(e)) for e in events) / N
        c = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip, one per connection
        stream = len(c.compress(b'')) 
        for e in events:
            stream += len(chunk(c.compress(e) + c.flush(zlib.Z_SYNC_FLUSH)))
        shared = 0
        for e in events:
            c1 = zlib.compressobj(6, zlib.DEFLATED, -15)
            shared += len(chunk(c1.compress(e) + c1.flush(zlib.Z_SYNC_FLUSH)))
        print(f"{kind:8} {enc:5} plain {plain:6.1f}  per-connection gzip {stream/N:6.1f}  shared per-event blocks {shared/N:6.1f}  B/event")
import time
events = [('id:%d\ndata:%s\n\n' % (n, ticker(n))).encode() for n in range(1, 20001)]
c = zlib.compressobj(6, zlib.DEFLATED, 31)
t = time.perf_counter()
for e in events:
    c.compress(e); c.flush(zlib.Z_SYNC_FLUSH)
dt = time.perf_counter() - t
print(f"per-connection streaming gzip: {dt/len(events)*1e6:.2f} µs per event per connection (python+zlib, ticker lean)")
t = time.perf_counter()
for e in events:
    c1 = zlib.compressobj(6, zlib.DEFLATED, -15); c1.compress(e); c1.flush(zlib.Z_SYNC_FLUSH)
dt = time.perf_counter() - t
print(f"shared per-event block: {dt/len(events)*1e6:.2f} µs per event, once for all subscribers")
