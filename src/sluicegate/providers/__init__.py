"""API specs: pure transforms between the OpenAI wire format the gateway speaks and each upstream spec."""
