import sys

from social_leadership.cli import main

sys.exit(main())
