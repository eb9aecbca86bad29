"""Usage limits: rate limits and budgets, exact on one process (memory.py) or many (redis_backend.py).

model.py (what users set), periods.py + estimate.py + checks.py (pure), backend.py (the interface),
memory.py and redis_backend.py (+ script.lua), limiter.py (a request's admission and settlement).
"""
