"""Cost of Tansu 0.6.0's compaction with sqlite storage: times its query
(tansu-storage's sql/policy_compact.sql, run by the broker's maintenance every 10 minutes, during
which the broker answers nothing) on one compacted partition holding RECORDS records spread
round-robin over KEYS keys, with Tansu's own tables, in Python's sqlite3. Reads the DDL and the
query from the tansu-storage sources that `cargo install tansu` left in the cargo registry.

    python3 bench/tansu_compaction_cost.py KEYSxRECORDS...     e.g. 100x100000 1000x100000
"""
import glob
import os
import sqlite3
import sys
import time

sources = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/tansu-storage-0.6.0"))
if not sources:
    sys.exit("tansu-storage-0.6.0 sources not found under ~/.cargo/registry/src")
ddl = sorted(glob.glob(sources[0] + "/src/ddl/*.sql"))
query = open(sources[0] + "/src/sql/policy_compact.sql").read().replace("$1", "?")

print(f"sqlite {sqlite3.sqlite_version}")
plan = sqlite3.connect(":memory:")
for path in ddl:
    plan.executescript(open(path).read())
for row in plan.execute("explain query plan " + query, ("tansu",)):
    print("plan:", row[3])

for spec in sys.argv[1:]:
    keys, records = map(int, spec.split("x"))
    db = sqlite3.connect(":memory:")
    for path in ddl:
        db.executescript(open(path).read())
    db.execute("insert into cluster (name) values ('tansu')")
    db.execute("insert into topic (cluster, name, uuid, partitions, replication_factor)"
               " values (1, 's', 'u', 1, 1)")
    db.execute("insert into topic_configuration (topic, name, value)"
               " values (1, 'cleanup.policy', 'compact')")
    db.execute("insert into topition (topic, partition) values (1, 0)")
    db.executemany("insert into record (topition, offset_id, k, v) values (1, ?, ?, ?)",
                   ((o, b"key-%d" % (o % keys), b"x" * 60) for o in range(records)))
    db.commit()
    started = time.perf_counter()
    db.execute(query, ("tansu",))
    db.commit()
    seconds = time.perf_counter() - started
    left = db.execute("select count(*) from record").fetchone()[0]
    print(f"{keys:>8} keys x {records:>9} records: {seconds:8.2f} s,"
          f" {seconds / (keys * records) * 1e9:5.2f} ns per key x record, {left} left", flush=True)
