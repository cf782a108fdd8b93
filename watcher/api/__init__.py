"""The HTTP client of the OpenAI-style API: paging, rate limits, retries, bodies."""
