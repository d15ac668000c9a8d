from data_platform.cli.main import main

main()
