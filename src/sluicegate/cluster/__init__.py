"""State the replicas of one deployment share through Redis beyond the limits and the cache: circuit
breakers (breaker.py)."""
