"""`users-service`: serve the API and manage its database (`users-service --help`)."""

from service_kit.cli import ServiceCli
from users_service.migrations import HISTORY
from users_service.settings import Settings

CLI = ServiceCli(Settings, "users_service.main:create_app", HISTORY, __doc__ or "")
main = CLI.main
