import sys

from sandbox.run import main

if __name__ == "__main__":  # `python -m sandbox`; importing this module runs nothing
    sys.exit(main())
