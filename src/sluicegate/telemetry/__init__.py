"""The request log (one record per request → rows → store), its query API, and Prometheus metrics."""
