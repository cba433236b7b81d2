"""frontdesk's reference apps: support desk, Stripe disputes and airline customer service.

Each keeps its own data beside the runtime's store (:mod:`._appdb`)."""
