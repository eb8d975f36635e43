"""Adapters: the only modules that call AWS. Each takes an injected boto3 client."""
