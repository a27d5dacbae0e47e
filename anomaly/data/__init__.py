"""Data in and out: reading series from files and streams, and writing files atomically.

- :mod:`anomaly.data.formats`: CSV/TSV/semicolon text, Parquet and streams as raw rows
  (sniffing, UTF-8, fingerprints);
- :mod:`anomaly.data.columns`: column roles (time, labels, features) and cell parsing, with the
  one time rule (timezone-aware times become UTC);
- :mod:`anomaly.data.reading`: the chunked reader (:func:`~anomaly.data.reading.iter_series`)
  with the one gap rule, and :func:`~anomaly.data.reading.read_series`, that stream collected;
- :mod:`anomaly.data.writing`: the one atomic writer, tables, text and the results sink.
"""
