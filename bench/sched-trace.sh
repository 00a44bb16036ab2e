#!/usr/bin/env bash
# sched-trace.sh WAIT_FILE OUT [SECONDS] [CPU_MASK]: once WAIT_FILE has a line starting with
# "burst " (the DHCP bench with TWB_DHCP_COLD_TRACE=1 prints one after each burst turn), records
# the scheduler (switches, wake-ups), softirqs, IRQs and work items of the measured CPU
# (mask 2 = CPU 1, the bench's default) for SECONDS (12) with ftrace, CLOCK_MONOTONIC
# timestamps, into OUT. Read it with bench/sched-trace-report.py. Root; mounts tracefs.
set -euo pipefail
T=/sys/kernel/tracing
[ -e $T/trace ] || mount -t tracefs nodev $T
echo 0 > $T/tracing_on
echo > $T/trace
echo "${4:-2}" > $T/tracing_cpumask
echo mono > $T/trace_clock
echo 400000 > $T/buffer_size_kb
echo > $T/set_event
for e in sched:sched_switch sched:sched_wakeup irq:softirq_entry irq:softirq_exit \
  workqueue:workqueue_execute_start workqueue:workqueue_execute_end irq:irq_handler_entry irq:irq_handler_exit; do
  echo $e >> $T/set_event
done
until grep -q '^burst ' "$1" 2>/dev/null; do sleep 0.2; done
echo 1 > $T/tracing_on
sleep "${3:-12}"
echo 0 > $T/tracing_on
cat $T/trace > "$2"
echo > $T/trace
echo > $T/set_event
