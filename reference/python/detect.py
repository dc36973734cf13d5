#!/usr/bin/env python3
"""Score each transaction on its own with the notebook's model; write the outliers to a topic."""
import argparse
import json
import time

import numpy as np
from confluent_kafka import Consumer, Producer
from joblib import load


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--input", default="transactions")
    parser.add_argument("--output", default="anomalies")
    parser.add_argument("--group", default="reference-detector")
    parser.add_argument("--model", default="isolation_forest.joblib")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after this many (0 = no limit)")
    parser.add_argument("--idle-exit", type=float, default=10.0, help="stop after this long without a record, s")
    options = parser.parse_args()

    model = load(options.model)
    consumer = Consumer({
        "bootstrap.servers": options.bootstrap,
        "group.id": options.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([options.input])
    producer = Producer({"bootstrap.servers": options.bootstrap})

    processed = outliers = 0
    first_at = None
    last_at = time.monotonic()
    while options.max_messages == 0 or processed < options.max_messages:
        message = consumer.poll(timeout=1.0)
        if message is None:
            if time.monotonic() - last_at > options.idle_exit:
                break
            continue
        if message.error():
            print(f"detect.py: consumer error {message.error()}")
            continue
        last_at = time.monotonic()
        first_at = first_at or last_at
        record = json.loads(message.value())
        row = record["data"]
        if model.predict(row)[0] == -1:
            record["score"] = np.round(model.score_samples(row), 3).tolist()
            producer.produce(options.output, key=str(record["id"]), value=json.dumps(record).encode())
            producer.flush()
            outliers += 1
        consumer.commit(message=message, asynchronous=False)
        processed += 1
    consumer.close()
    seconds = last_at - first_at if first_at else 0.0
    rate = processed / seconds if seconds > 0 else 0.0
    print(f"detect.py: processed={processed} anomalies={outliers} seconds={seconds:.1f} rate={rate:.1f}/s")


if __name__ == "__main__":
    main()
