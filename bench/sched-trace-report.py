#!/usr/bin/env python3
"""sched-trace-report.py TRACE [BENCH_ERR]: what ran on the traced CPU (bench/sched-trace.sh's output).

Prints CPU time per command, the longest runs, the longest softirqs and work items, and every
wake-up of a server or probe (node, dnsmasq) that waited over 1 ms for the CPU, with what ran
meanwhile; then those delays counted by their main occupant. With BENCH_ERR (the DHCP bench's
stderr with TWB_DHCP_COLD_TRACE=1), also each burst exchange at or over its p99 that falls in the
trace: what ran on the CPU, and which softirqs, from its request to its reply.
"""
import bisect
import collections
import re
import sys

LINE = re.compile(r'^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)$')
MEASURED = ('node', 'dnsmasq')


def fields(s):
    return dict(re.findall(r'(\w+)=(\S+)', s))


def main(path):
    woken = {}  # tid -> wake-up time
    ran = collections.defaultdict(collections.Counter)  # woken tid -> occupant -> ms
    runs = []  # (start, end, (comm, tid))
    delays = []  # (ms, (comm, tid), at, [(occupant, ms)])
    cur, cur_start = None, None
    softirq, softirqs = None, []
    work, works = {}, []
    for line in open(path, errors='replace'):
        m = LINE.match(line)
        if not m:
            continue
        _, tid, _, ts, ev, det = m.groups()
        ts = float(ts)
        if ev == 'sched_wakeup':
            d = fields(det)
            woken.setdefault(d['pid'], ts)
        elif ev == 'sched_switch':
            d = fields(det)
            if cur is not None:
                runs.append((cur_start, ts, cur))
                occupant = cur[0] if cur[0] != 'node' else f'node-{cur[1]}'
                for t in woken:
                    ran[t][occupant] += (ts - cur_start) * 1000
            nxt = (d['next_comm'], d['next_pid'])
            if nxt[1] in woken:
                ms = (ts - woken.pop(nxt[1])) * 1000
                if ms > 1.0 and nxt[0] in MEASURED:
                    delays.append((ms, nxt, ts, ran[nxt[1]].most_common(4)))
                ran.pop(nxt[1], None)
            cur, cur_start = nxt, ts
        elif ev == 'softirq_entry':
            softirq = (ts, det)
        elif ev == 'softirq_exit' and softirq:
            softirqs.append(((ts - softirq[0]) * 1000, softirq[1], softirq[0]))
            softirq = None
        elif ev == 'workqueue_execute_start':
            work[tid] = (ts, det)
        elif ev == 'workqueue_execute_end' and tid in work:
            s, d = work.pop(tid)
            works.append(((ts - s) * 1000, d, s))
    if not runs:
        sys.exit('no sched_switch lines')
    total = collections.Counter()
    for s, e, c in runs:
        total[c[0]] += (e - s) * 1000
    print('span %.1f s' % (runs[-1][1] - runs[0][0]))
    print('CPU ms by command:', [(k, round(v, 1)) for k, v in total.most_common(10)])
    longest = sorted(((e - s) * 1000, c, s) for s, e, c in runs if c[0] != 'swapper/1')[-10:]
    print('longest runs (ms, who, at):', [(round(a, 2), c, round(s, 3)) for a, c, s in longest])
    print('longest softirqs:', [(round(a, 2), d, round(s, 3)) for a, d, s in sorted(softirqs)[-6:]])
    print('longest work items:', [(round(a, 2), d[-40:], round(s, 3)) for a, d, s in sorted(works)[-4:]])
    print('server/probe wake-ups waiting > 1 ms: %d' % len(delays))
    for ms, who, at, occ in sorted(delays, key=lambda x: -x[0])[:20]:
        print('  %.2f ms %s at %.3f; ran meanwhile: %s' % (ms, who, at, [(o, round(t, 2)) for o, t in occ]))
    by = collections.Counter((occ[0][0] if occ else '?') for _, _, _, occ in delays)
    print('by main occupant (swapper/1 = softirqs and IRQs on an idle CPU):', by.most_common(8))
    return runs, softirqs


SLOW = re.compile(r'^burst (\S+) (\S+) at ([\d.]+) >= p99 [\d.]+: (.*)$')


def slow_windows(runs, softirqs, err):
    """Each slow burst exchange in the trace's span: the runs and softirqs inside it."""
    lo, hi = runs[0][0], runs[-1][1]
    starts = [r[0] for r in runs]
    for line in open(err, errors='replace'):
        m = SLOW.match(line.strip())
        if not m:
            continue
        server, kind, t0 = m.group(1), m.group(2), float(m.group(3)) / 1000
        for item in m.group(4).split():
            off, lat = item[1:].split(':')
            a = t0 + float(off) / 1000
            b = a + float(lat) / 1000
            if a < lo or b > hi:
                continue
            k = max(0, bisect.bisect_right(starts, a) - 1)
            inside = []
            while k < len(runs) and runs[k][0] < b:
                s, e, c = runs[k]
                ms = (min(e, b) - max(s, a)) * 1000
                if ms > 0.005:
                    inside.append('%s-%s %.3f' % (c[0], c[1], ms))
                k += 1
            irq = ['%s %.3f' % (d.split('=')[-1].strip('[]'), t) for t, d, s in softirqs if a <= s < b]
            print('%s %s %.3f ms at %.4f: %s | softirqs %s' % (server, kind, float(lat), a, ', '.join(inside), irq))


if __name__ == '__main__':
    traced = main(sys.argv[1])
    if len(sys.argv) > 2:
        slow_windows(*traced, sys.argv[2])
