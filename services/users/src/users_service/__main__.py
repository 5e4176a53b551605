from users_service.cli import main

main()
