"""What every service needs and nothing domain-specific: problem details, request ids, JSON
logs, the body limit, the security headers, the client's address, the Lambda adapter.

Both services depend on this package; neither depends on the other.
"""
