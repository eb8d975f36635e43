"""Hotline's shared core: the domain (events, requests, directory, messages, pages), the use
cases (call, answering, time_out, telling, outcomes, benefits), what every Lambda entry point
shares (runtime/) and the adapters that are the only place AWS is called (adapters/). Shipped
to Lambda as a layer."""
