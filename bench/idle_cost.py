"""Idle cost of a fetch.wait.max.ms value on Tansu: one consumer on an idle 3-partition topic
for SECONDS; prints fetches per second and the broker's CPU (BROKER_PID).

    BROKER_PID=... idle_cost.py BOOTSTRAP TOPIC SECONDS WAIT_MS
"""
import os
import sys
import time

from confluent_kafka import Consumer, TopicPartition, OFFSET_END


def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


bootstrap, topic, seconds, wait = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
pid = os.environ["BROKER_PID"]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "idle", "fetch.wait.max.ms": wait})
c.assign([TopicPartition(topic, p, OFFSET_END) for p in range(3)])
c.poll(1)
t0, c0 = time.time(), cpu(pid)
own0 = time.process_time()
while time.time() - t0 < seconds:
    c.poll(0.1)
elapsed = time.time() - t0
print(f"fetch.wait.max.ms={wait}: broker CPU {100 * (cpu(pid) - c0) / elapsed:.1f}% of a core, "
      f"consumer CPU {100 * (time.process_time() - own0) / elapsed:.1f}%")
c.close()
