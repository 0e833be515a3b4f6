"""Language models the chat service can call (Gemini, OpenAI-compatible servers), with the retry policy around them."""
