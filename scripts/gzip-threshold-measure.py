import zlib, random, gzip
random.seed(3)
T0=1764072000000000
def ticker(n):
    mid = 100 + random.randrange(2000) / 100; sp = 0.01 + random.randrange(4) / 100
    return '{"n":%d,"t":%d,"symbol":"FGT","bid":%.2f,"ask":%.2f,"last":%.2f,"size":%d,"volume":%d}' % (n, T0+n*100000, mid-sp/2, mid+sp/2, mid, 1+random.randrange(500), 1000000+n*250)
def pad(n):
    head = '{"n":%d,"t":%d,"pad":"' % (n, T0 + n * 100000)
    return head + 'x' * (100 - len(head) - 2) + '"}'
HDR = len("content-encoding: gzip\r\n") + len("vary: accept-encoding\r\n")
for name, gen in [("ticker", ticker), ("padding", pad)]:
  for enc in ["json","lean"]:
    row=[]
    for k in [1,2,3,4,6,10]:
        evs=[]
        for n in range(1000,1000+k):
            d=gen(n)
            evs.append(('{"topic":"bench","seq":%d,"time":%d,"data":%s}'%(n,T0+n,d)) if enc=="json" else d)
        body=('{"epoch":"9f2c4e01a7b3d5e8","events":[%s],"next":%d}'%(",".join(evs),1000+k)).encode()
        z=len(gzip.compress(body,5,mtime=0))
        row.append(f"{len(body)}→{z+HDR}")
    print(name, enc, "  ".join(row))
