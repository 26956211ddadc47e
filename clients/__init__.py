"""Client SDK, chat CLI and OpenAI-compatible gateway (tritonkit.clients)."""
