"""What every Lambda entry point shares, a module each: `observability` (logs and metrics),
`clients` (AWS clients and their timeouts), `budgets` (how long a retried call may take),
`deps` (the adapters a handler uses, built once per container) and `consumer` (the wrapper
that makes an EventBridge consumer of a function)."""
