"""From predictions to flags, in pure numpy (no pandas, no TensorFlow): scaling
(``preprocessing``), training windows (``windowing``), the linear part under the network
(``autoregression``), residuals to scores (``scoring``: normaliser, aggregator; ``error_level``:
each feature's error level following the stream), the EWMA (``smoothing``), thresholds
(``thresholds``, with the level follower in ``level``), events (``events``), and the scorer that
chains them over a stream (``scorer``)."""
