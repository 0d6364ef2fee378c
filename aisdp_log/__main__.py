"""`python -m aisdp_log`."""

from aisdp_log.cli.main import main

if __name__ == "__main__":
    main()
