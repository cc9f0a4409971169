"""Pairs the samples of a two-thread `perf record` in time: how often each thread is idle (in the
pool's spin/park code) and, per symbol, how many samples ran while the other thread was idle.

usage: perf record -F 4999 -o p.data target/release/examples/bench 4a --threads 2 --json
       perf script -i p.data -F tid,time,ip,sym | python3 tools/idle_pairs.py
"""
import sys, collections, bisect
idle_syms=("worker_main","Waiter","spin_until","clock_gettime","keep_awake","crossbeam","rayon","yield","sched","finish_task","do_sched","futex","switch")
rows=[]
for l in sys.stdin:
    p=l.split(None,3)
    if len(p)<4: continue
    rows.append((float(p[1].rstrip(":")),int(p[0]),p[3].strip()))
rows.sort()
tids=collections.Counter(r[1] for r in rows)
a,b=[t for t,_ in tids.most_common(2)]
times={a:[],b:[]}; syms={a:[],b:[]}
for t,tid,s in rows:
    if tid in times: times[tid].append(t); syms[tid].append(s)
def idle(s): return any(k in s for k in idle_syms)
for t in (a,b): print(t, len(times[t]), sum(idle(s) for s in syms[t]))
busy_other=collections.Counter(); tot=collections.Counter()
for x,y in ((a,b),(b,a)):
    for t,s in zip(times[x],syms[x]):
        if idle(s): continue
        i=bisect.bisect_left(times[y],t)
        if i<len(times[y]) and abs(times[y][i]-t)<0.0001:
            tot[s[:60]]+=1
            if idle(syms[y][i]): busy_other[s[:60]]+=1
for s,c in busy_other.most_common(20): print(c, tot[s], s)
