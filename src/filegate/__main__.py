from filegate.cli import main

main()
