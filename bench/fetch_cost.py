"""Tansu's fetch time against the number of record batches a topic holds: fills fresh
3-partition topics with N one-record batches, then times (1) idle fetches at the end
(fetch.wait.max.ms=1, librdkafka's rtt statistics) and (2) reads of the last record of each
partition, the fetch every record of a live stream needs. Tansu 0.6.0's memory storage lists
every batch object of a partition when a fetch has records to return, so (2) grows with N.

    fetch_cost.py BOOTSTRAP N [N ...]
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_END
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    bootstrap, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for n in sizes:
        topic = f"cost-{n}-{int(time.time())}"
        admin.create_topics([NewTopic(topic, 3, 1)])[topic].result()
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1,
                      "enable.idempotence": True})
        for i in range(n):
            while True:
                try:
                    p.produce(topic, b"x" * 60, partition=i % 3)
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
        p.flush(60)
        windows = []

        def stats(raw):
            data = json.loads(raw)
            for broker in data["brokers"].values():
                if broker["nodeid"] >= 0 and broker["rtt"]["cnt"]:
                    windows.append(broker["rtt"])

        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cost", "fetch.wait.max.ms": 1,
                      "statistics.interval.ms": 1000, "stats_cb": stats})
        c.assign([TopicPartition(topic, q, OFFSET_END) for q in range(3)])
        end = time.time() + 4.5
        while time.time() < end:
            c.poll(0.1)
        w = windows[-1] if windows else {"p50": float("nan"), "p99": float("nan"), "cnt": 0}
        at = {.5: w["p50"] / 1000, .99: w["p99"] / 1000}.get
        # A fetch with records to return: the last record of each partition, 15 times.
        highs = [c.get_watermark_offsets(TopicPartition(topic, q))[1] for q in range(3)]
        reads = []
        for _ in range(15):
            t = time.time()
            c.assign([TopicPartition(topic, q, max(0, highs[q] - 1)) for q in range(3)])
            got = 0
            while got < min(3, n) and time.time() - t < 5:
                m = c.poll(0.5)
                got += m is not None and not m.error()
            reads.append((time.time() - t) * 1000)
            c.unassign()
        c.close()
        reads.sort()
        print(f"{n:6d} batches: read of the last record of each partition: median "
              f"{reads[len(reads) // 2]:.1f} ms", flush=True)
        print(f"{n:6d} batches ({n // 3} per partition): idle fetch rtt p50 {at(.5):.1f} ms "
              f"p99 {at(.99):.1f} ms over {w['cnt']} fetches in the last 1 s window", flush=True)



if __name__ == "__main__":
    main()
