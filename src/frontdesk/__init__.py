"""frontdesk: a durable production runtime for OpenAI Agents SDK agents."""
