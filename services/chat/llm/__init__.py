"""Language models the chat service can call (Gemini), with the retry policy around them."""
