"""Pydantic models: the OpenAI wire format, rules, the model catalog, and DynamoDB items."""
