"""The data-quality gate: record validation outcomes, refuse to start or halt on a breach.

A :class:`QualityGate` is fed with

* :class:`~tradelab.data.validate.ValidationReport` objects (the bars a run starts
  from, and backfill loads): rows rejected by reason (policy ``drop``; under
  ``fill`` the repaired kinds and the unrepairable rows), gaps, the row count;
* a live feed's outcomes, read from its ``stats()`` (``rejected`` by reason,
  ``dropped`` by the sequencer, stale connections) and from the bars it delivers
  (gaps, time without a fresh bar).

It records every outcome (aggregated per source, symbol, kind and reason) in
the store's ``data_quality_events`` table (batched: on the engine's flush cadence,
at most every second, at the end, and at once on a breach) and as events on
the engine's bus, which :class:`tradelab.monitor.metrics.Metrics` turns into
Prometheus counters and a staleness gauge. It evaluates the ``[data.quality]``
thresholds (:class:`tradelab.config.QualitySettings`) per run (all sources and
symbols together) and describes a breach precisely: the threshold, its limit
and the observed value, e.g. ``rejected messages 31 > max_rejected 20
(not_json 18, high_low 13)``.

Before a run (:meth:`QualityGate.check_start`) a breach raises
:class:`~tradelab.errors.DataQualityError`; during a run
(:class:`QualityGatedFeed`) it stops the engine after the current bar through
``on_breach`` (``engine.request_stop``) and publishes a critical
:class:`~tradelab.events.RiskAlert` (rule ``data_quality``), so the breach reaches
the notifier, the risk-event table and the metrics the way risk breaches do.
With ``action = "warn"`` breaches are recorded and logged, nothing stops.

``max_rejected_fraction`` is checked on a live feed only once
:data:`FRACTION_MIN_SEEN` rows/messages were seen (one bad message out of two is
not a rate yet); before a run it is checked on the whole load.
"""
from __future__ import annotations

from tradelab.data.quality.breach import Breach
from tradelab.data.quality.events import FeedStaleness, QualityBreached, QualityRecorded
from tradelab.data.quality.feed import QualityGatedFeed, feed_label, gate_feed, is_live
from tradelab.data.quality.gate import FRACTION_MIN_SEEN, MAX_FLUSH_SECONDS, RULE, QualityGate

__all__ = ["FRACTION_MIN_SEEN", "MAX_FLUSH_SECONDS", "RULE", "Breach", "FeedStaleness",
           "QualityBreached", "QualityGate", "QualityGatedFeed", "QualityRecorded", "feed_label",
           "gate_feed", "is_live"]
