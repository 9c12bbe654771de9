"""Webhooks: endpoints, signed deliveries on a retry ladder, the delivery log."""
