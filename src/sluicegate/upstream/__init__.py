"""The outbound side: one pooled HTTP client, the SSRF guard, credential application."""
