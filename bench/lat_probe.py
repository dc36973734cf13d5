"""Latency probes for one hop of the pipeline at a time (bench/hop.sh runs the first).

    lat_probe.py consume BOOTSTRAP TOPIC SECONDS [k=v ...]
        Assigns every partition of TOPIC at its end and, for each record read, takes
        now - the record's Kafka timestamp (CreateTime: set when the producer's produce() was
        called). No producing: the generator → broker → consumer hop alone.
    lat_probe.py produce BOOTSTRAP TOPIC SECONDS RATE [k=v ...]
        Produces RATE records/s (paced like the generator: record n is due n/RATE after the
        start) and, per record, takes ack time - CreateTime: the producer → broker hop alone.

Both print `p50 p95 p99 max count` in ms, the worst second, and librdkafka's own view of the
broker's round trips (statistics: rtt, and for producers int_latency = time in the local
queue), so a tail can be pinned on the client, the wire or the broker.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_END


def pct(values, q):
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def summary(name, lat):
    s = sorted(lat)
    return (f"{name}: p50 {pct(s, .5):.1f} p95 {pct(s, .95):.1f} p99 {pct(s, .99):.1f} "
            f"max {s[-1] if s else float('nan'):.1f} count {len(s)}")


class Stats:
    """Keeps the broker-level windows librdkafka reports (rtt, int_latency, outbuf_latency)."""

    def __init__(self):
        self.windows = []

    def __call__(self, raw):
        data = json.loads(raw)
        for broker in data.get("brokers", {}).values():
            if broker.get("nodeid", -1) < 0:
                continue
            row = {}
            for key in ("rtt", "int_latency", "outbuf_latency", "throttle"):
                w = broker.get(key) or {}
                if w.get("cnt"):
                    row[key] = (w["p50"] / 1000, w["p99"] / 1000, w["max"] / 1000, w["cnt"])
            row["req"] = broker.get("req", {})
            self.windows.append(row)

    def report(self):
        for key in ("rtt", "int_latency", "outbuf_latency", "throttle"):
            rows = [w[key] for w in self.windows if key in w]
            if rows:
                p50s = sorted(r[0] for r in rows)
                p99s = sorted(r[1] for r in rows)
                maxes = sorted(r[2] for r in rows)
                print(f"  librdkafka {key} (ms, per 1 s window, median of windows): "
                      f"p50 {pct(p50s, .5):.1f} p99 {pct(p99s, .5):.1f} "
                      f"max {pct(maxes, .5):.1f} (worst window max {maxes[-1]:.1f})")
        if self.windows:
            req = {k: v for k, v in self.windows[-1]["req"].items() if v}
            print(f"  requests: {req}")


def overrides(args):
    return dict(a.split("=", 1) for a in args)


def consume(bootstrap, topic, seconds, extra):
    stats = Stats()
    conf = {"bootstrap.servers": bootstrap, "group.id": "lat-probe", "enable.auto.commit": False,
            "fetch.wait.max.ms": 10, "statistics.interval.ms": 1000, "stats_cb": stats}
    conf.update(extra)
    c = Consumer(conf)
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
    print("ready", flush=True)
    lat, per_second = [], {}
    deadline = None
    start = time.time()
    while True:
        # poll, not consume(n, timeout): librdkafka's batch consume waits for n records or
        # the whole timeout, which would add up to the timeout to every latency.
        m = c.poll(0.1)
        msgs = [m] if m is not None else []
        now = time.time() * 1000
        for m in msgs:
            if m.error():
                continue
            d = now - m.timestamp()[1]
            lat.append(d)
            sec = int(m.timestamp()[1] / 1000)
            per_second.setdefault(sec, []).append(d)
        if msgs and deadline is None:
            deadline = time.time() + seconds
        if deadline and time.time() > deadline:
            break
        if deadline is None and time.time() - start > 120:
            break
    c.close()
    print(summary("consume now-CreateTime", lat))
    if per_second:
        worst = sorted(max(v) for v in per_second.values())
        print(f"  per-second max: median {pct(worst, .5):.0f} ms, worst {worst[-1]:.0f} ms over {len(worst)} s")
        secs = sorted(per_second)
        early = sorted(d for s in secs[1:6] for d in per_second[s])
        late = sorted(d for s in secs[-6:-1] for d in per_second[s])
        print(f"  seconds 1-5: p50 {pct(early, .5):.1f} p99 {pct(early, .99):.1f}; "
              f"last 5 s: p50 {pct(late, .5):.1f} p99 {pct(late, .99):.1f}")
        print("  timeline (second: p50/max ms): " + " ".join(
            f"{i}:{pct(sorted(per_second[s]), .5):.0f}/{max(per_second[s]):.0f}"
            for i, s in enumerate(sorted(per_second))))
    stats.report()


def produce(bootstrap, topic, seconds, rate, extra):
    stats = Stats()
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "batch.num.messages": 10000, "statistics.interval.ms": 1000,
            "stats_cb": stats}
    conf.update(extra)
    p = Producer(conf)
    lat = []

    def done(err, msg):
        if err is None:
            lat.append(time.time() * 1000 - msg.timestamp()[1])

    start = time.time()
    n, total = 0, int(seconds * rate)
    payload = b"x" * 200
    while n < total:
        due = start + n / rate
        now = time.time()
        if now < due:
            p.poll(0)
            time.sleep(due - now)
            continue
        p.produce(topic, payload, key=str(n).encode(), on_delivery=done)
        n += 1
        if n % 256 == 0:
            p.poll(0)
    p.flush(30)
    print(summary("produce ack-CreateTime", lat))
    stats.report()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "consume":
        consume(sys.argv[2], sys.argv[3], float(sys.argv[4]), overrides(sys.argv[5:]))
    else:
        produce(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]),
                overrides(sys.argv[6:]))
