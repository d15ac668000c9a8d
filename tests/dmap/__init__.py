"""DMAP fetch: against a real local HTTP server."""
