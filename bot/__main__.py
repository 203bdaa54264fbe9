"""`python -m bot` is the same as the `duan8` command."""

from bot.cli import main

if __name__ == "__main__":
    main()
