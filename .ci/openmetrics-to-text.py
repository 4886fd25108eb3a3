"""Reads an OpenMetrics exposition (what /metrics serves) and writes it in Prometheus' classic
text format, so `promtool check metrics` (which reads only that) can lint it. Both sides are the
official Python client's parser and writer: nothing here formats a sample by hand."""

import sys

from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families


class Parsed:
    """A collector that hands the parsed families back to the writer."""

    def __init__(self, text):
        self.families = list(text_string_to_metric_families(text))

    def collect(self):
        return self.families


def main():
    text = sys.stdin.read()
    if not text.rstrip().endswith("# EOF"):
        sys.exit("not an OpenMetrics exposition: no # EOF line")
    parsed = Parsed(text)
    if not parsed.families:
        sys.exit("no metric families")
    sys.stdout.write(generate_latest(parsed).decode())


if __name__ == "__main__":
    main()
