"""End-to-end latency of any consume→produce stage that keeps record keys: for each key, the
output record's Kafka timestamp minus the input record's. Used to check whether the detector's
latency tail is its own (run it on the pass-through example's topics; see README, Measured).

    .venv/bin/python bench/passthrough_latency.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC
"""
import sys

from confluent_kafka import Consumer, TopicPartition


def first_timestamps(bootstrap, topic):
    """Key → Kafka timestamp (ms) of its first record, reading until 5 s pass without one."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "latency-check",
                         "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    stamps, idle = {}, 0
    while idle < 20:
        messages = consumer.consume(10000, timeout=0.25)
        idle = 0 if messages else idle + 1
        for message in messages:
            if not message.error():
                stamps.setdefault(message.key(), message.timestamp()[1])
    consumer.close()
    return stamps


def main():
    bootstrap, source, sink = sys.argv[1:4]
    sent, out = first_timestamps(bootstrap, source), first_timestamps(bootstrap, sink)
    latencies = sorted(out[key] - sent[key] for key in out if key in sent)
    if not latencies:
        sys.exit("no record of the output topic matches one of the input topic")
    at = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(f"latency over {len(latencies)} records: p50 {at(0.5)} ms, p95 {at(0.95)} ms, "
          f"p99 {at(0.99)} ms")


if __name__ == "__main__":
    main()
