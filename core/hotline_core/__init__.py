"""Hotline's shared core: the domain (events, requests, directory, messages, pages) and the
adapters that are the only place AWS is called. Shipped to Lambda as a layer."""
