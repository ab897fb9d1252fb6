"""The text exposition format (0.0.4) of a registry, at a fraction of prometheus-client's cost.

prometheus-client's ``generate_latest`` checks and escapes every label name and value of every
sample anew: about 5 us a sample, two thirds of a scrape at 30-odd samples per container. The
collector gives all samples of one container the same labels dict (``collector.Series``), so
here each dict is rendered once, the first time it is met, and every later sample with it costs
a dict look-up and one formatted line (0.5 us). Label names are the collectors' own constants,
valid by construction; values are escaped as the format says (backslash, double quote, newline).
Families are written as ``generate_latest`` writes them (a counter's ``_total``, an info's
``_info``, OpenMetrics' ``_created``/``_gsum``/``_gcount`` samples as gauges of their own), so
the output parses to the same series.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TYPES = {"counter": "counter", "info": "gauge", "stateset": "gauge",
          "gaugehistogram": "histogram", "unknown": "untyped"}
_SUFFIXES = {"counter": "_total", "info": "_info"}
_SEPARATE = ("_created", "_gsum", "_gcount")  # OpenMetrics' own: a gauge each, after the family


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _value(value: float) -> str:
    if type(value) is int:
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return "NaN" if math.isnan(value) else repr(float(value))


def _header(name: str, kind: str, documentation: str) -> str:
    text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n"


class _Lines:
    """Sample lines, each labels dict rendered the first time it is met."""

    def __init__(self) -> None:
        # id(labels) -> (labels, kept so that no other dict can take that id; their text)
        self._rendered: dict[int, tuple[Mapping[str, str], str]] = {}

    def of(self, sample: Sample) -> str:
        labels = sample.labels
        if labels:
            entry = self._rendered.get(id(labels))
            if entry is None or entry[0] is not labels:
                entry = self._rendered[id(labels)] = (labels, _labels(labels))
            label_text = entry[1]
        else:
            label_text = ""
        stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
        return f"{sample.name}{label_text} {_value(sample.value)}{stamp}\n"


CHUNK_LINES = 1000


def chunks(registry: Collector) -> list[bytes]:
    """Every metric of ``registry`` in the text format, UTF-8, in pieces of about CHUNK_LINES
    lines. One piece of the whole would be one ``join`` and one ``encode`` over megabytes (6.4
    MB at 2000 containers), each a single call that holds the GIL, and so ctrd's event loop,
    for milliseconds (11 ms together, measured); a piece of a thousand lines holds it ~0.1 ms."""
    lines = _Lines()
    pieces: list[bytes] = []
    out: list[str] = []
    for metric in registry.collect():
        for line in _family(metric, lines):
            out.append(line)
            if len(out) >= CHUNK_LINES:
                pieces.append("".join(out).encode())
                out.clear()
    pieces.append("".join(out).encode())
    return pieces


def text(registry: Collector) -> bytes:
    """The same as one piece, for a reader that wants it whole (tests, benchmarks)."""
    return b"".join(chunks(registry))


def _family(metric: Metric, lines: _Lines) -> Iterator[str]:
    name = metric.name + _SUFFIXES.get(metric.type, "")
    yield _header(name, _TYPES.get(metric.type, metric.type), metric.documentation)
    separate: dict[str, list[str]] = {}
    for sample in metric.samples:
        suffix = sample.name[len(metric.name):]
        if suffix in _SEPARATE:
            separate.setdefault(suffix, []).append(lines.of(sample))
        else:
            yield lines.of(sample)
    for suffix, found in sorted(separate.items()):
        yield _header(metric.name + suffix, "gauge", metric.documentation)
        yield from found
