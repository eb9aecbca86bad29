"""The real-LLM harness: build (and cache) llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct,
run instances of it on loopback, and drive `make demo`. Standard library only, so it works before (and
outside) the gateway's own virtual environment."""
