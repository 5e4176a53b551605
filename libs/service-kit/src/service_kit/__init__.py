"""The services' chassis: what every service needs and nothing domain-specific.

`app.create_service_app` (docs under the service's prefix, problem details, the middleware:
security headers, the client's address, request ids and the access log, the body limit;
`/health` and `/ready`), `db` (the engine, `Database`, `DbSession`), `settings`
(`ServiceSettings`, the shared fields), `cli` (`serve`, `migrate`, `downgrade`, `revision`,
`healthcheck`, and a service's own commands), `migrations` (the runner and the one Alembic
environment), JSON logs that never carry a credential, the Lambda adapter, and the image
recipe beside this package (`libs/service-kit/Dockerfile`).

Every service depends on this package; no service depends on another.
"""
