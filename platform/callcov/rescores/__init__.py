"""Re-scoring stored analyses (issue 14): one through the API, or many in a run (``bulk.py``, a Ray
job); the results of each are a new results version of the analysis (``results.py``)."""
