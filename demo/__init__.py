"""`make demo` (``python -m demo``): build (and cache) llama.cpp's OpenAI-compatible server with
SmolLM2-135M-Instruct, run instances of it on loopback with sluicegate in front, and print examples. The
real-LLM tests (tests/e2e_real) use the same build and server helpers. Standard library only, so it works before (and
outside) the gateway's own virtual environment."""
