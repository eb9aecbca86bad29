"""Semantic caching: the exact match, then the nearest earlier prompt (cache.py), guarded against negation
and antonym flips (guard.py), over local all-MiniLM-L6-v2 embeddings (minilm.py, wordpiece.py) kept in a
bounded in-process index (index.py). numpy and the model are the optional ``semantic`` extra."""
