"""Research and advice: splitting questions, classifying requests, reading a market (pure)."""
