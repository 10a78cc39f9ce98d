from mpupload.cli.main import main

main()
