"""smsgate: a self-hosted bulk SMS gateway."""
