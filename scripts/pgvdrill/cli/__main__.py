import sys

from pgvdrill.cli.main import main

sys.exit(main())
