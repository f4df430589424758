import sys

from dmlviz.cli import main

sys.exit(main())
