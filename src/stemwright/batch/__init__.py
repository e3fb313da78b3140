"""Catalogue-scale batches: many files separated by a pool of Ray actors (``stemwright[ray]``), each loading the
model once and separating with the streaming file path; resumable (the CLI's skip rule), with bounded retries and
a report. Ray is imported only when a batch starts."""
