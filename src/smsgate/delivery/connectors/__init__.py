"""delivery/connectors layer."""
