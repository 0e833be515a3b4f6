"""Answer writers: the offline extractive answerer (and Gemini when a key is set)."""
