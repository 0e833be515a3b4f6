"""The chat service: answers a reader's question from the book, with citations."""
