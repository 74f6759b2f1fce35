import os
import sys

# Let tests import the fakes module next to them.
sys.path.insert(0, os.path.dirname(__file__))
