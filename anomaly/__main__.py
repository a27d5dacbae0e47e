"""Allow ``python -m anomaly``."""

from anomaly.cli import main

if __name__ == "__main__":
    main()
