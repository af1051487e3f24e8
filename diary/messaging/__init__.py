"""SMS: the provider gateway, outbox dispatch, inbound webhooks and message texts."""
