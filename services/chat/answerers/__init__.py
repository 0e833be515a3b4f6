"""Answer writers: the offline extractive answerer, Gemini, or any OpenAI-compatible model."""
