#!/usr/bin/env python3
"""Writes tests/fixtures/watch/tensorboard.tfevents with TensorBoard's own writer, for tests/test_watch.c.

The events are built with the tensorboard package's protobuf classes (event_pb2.Event,
summary_pb2.Summary) and framed by its RecordWriter, so neither the encoding nor the CRCs come
from tern. The file holds: file_version "brain.Event:2" at wall time 1700000000.5, then the
scalars of SCALARS (tag, step, wall time, value: a zero value, a zero step, a negative step and a
non-ASCII tag among them), then a SessionLog START at step 7. tern's reader must read back exactly
these, and tern's writer must write the scalar records byte for byte as here.

Usage: python3 tools/make_tb_fixture.py   (needs the tensorboard package)
"""
import os

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "watch", "tensorboard.tfevents")

# Kept in step with the table in tests/test_watch.c.
SCALARS = [
    ("train/loss", 1, 1700000001.25, 10.8309),
    ("train/lr", 1, 1700000001.25, 0.0001),
    ("train/loss", 2, 1700000002.0, 0.0),
    ("val/loss", 0, 1700000003.5, 5.70161),
    ("hellaswag/acc_norm", 300, 1700000100.0, 0.2955),
    ("négatif", -3, 1700000101.0, -1e30),
]


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        w = RecordWriter(f)
        w.write(event_pb2.Event(wall_time=1700000000.5, file_version="brain.Event:2").SerializeToString())
        for tag, step, wall, value in SCALARS:
            s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
            w.write(event_pb2.Event(wall_time=wall, step=step, summary=s).SerializeToString())
        log = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
        w.write(event_pb2.Event(wall_time=1700000102.0, step=7, session_log=log).SerializeToString())
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
