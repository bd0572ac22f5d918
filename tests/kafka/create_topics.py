"""Creates Painpoint's eight topics on a broker, as `painpoint broker` creates them (N partitions
each, painpoint.summaries compacted): for scripts that start Apache Kafka with scripts/kafka.sh.

usage: create_topics.py BOOTSTRAP PARTITIONS
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import create_painpoint_topics  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    create_painpoint_topics(sys.argv[1], int(sys.argv[2]))
