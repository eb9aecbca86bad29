"""The edge: HTTP routes, header parsing, responses and streaming."""
