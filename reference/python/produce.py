#!/usr/bin/env python3
"""Write the notebook's synthetic transactions to Kafka, one JSON record at a time."""
import argparse
import json
import random
import time
from datetime import datetime, timezone

import numpy as np
from confluent_kafka import Producer


def next_point(coin, outlier_probability):
    """One [[x, y]] row: a uniform outlier, or a point of one of the two clusters."""
    if coin.random() <= outlier_probability:
        row = np.random.uniform(-4, 4, size=(1, 2))
    else:
        centre = np.random.choice([2, -2], size=1)
        row = 0.3 * np.random.randn(1, 2) + centre
    return np.round(row, 3).tolist()


def naive_utc_now():
    """The time as the notebook writes it: ISO 8601, UTC, without an offset."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="transactions")
    parser.add_argument("--count", type=int, default=1000, help="records to write (0 = no end)")
    parser.add_argument("--delay", type=float, default=0.01, help="pause between records, seconds")
    parser.add_argument("--outlier-probability", type=float, default=0.7)
    parser.add_argument("--first-id", type=int, default=0)
    parser.add_argument("--seed", type=int, help="seed both random streams (repeatable output)")
    parser.add_argument("--batch", action="store_true", help="flush once at the end, not per record")
    options = parser.parse_args()

    coin = random.Random(options.seed)
    if options.seed is not None:
        np.random.seed(options.seed)
    producer = Producer({"bootstrap.servers": options.bootstrap})
    started = time.monotonic()
    written = 0
    while options.count == 0 or written < options.count:
        record_id = options.first_id + written
        record = {
            "id": record_id,
            "data": next_point(coin, options.outlier_probability),
            "current_time": naive_utc_now(),
        }
        producer.produce(options.topic, key=str(record_id), value=json.dumps(record).encode())
        if options.batch:
            producer.poll(0)
        else:
            producer.flush()
        written += 1
        if options.delay > 0:
            time.sleep(options.delay)
    producer.flush()
    seconds = time.monotonic() - started
    print(f"produce.py: sent={written} seconds={seconds:.1f} rate={written / max(seconds, 1e-9):.1f}/s")


if __name__ == "__main__":
    main()
