"""Detection quality against labels: point-wise, event-wise and TSB-AD's threshold-free metrics (``metrics``)."""
