#!/bin/sh
# Recompile the console's catalogues after editing a .po (verification/translations/<lang>/...):
# a new text is a new key (msgid) in messages.pot and in both languages' messages.po.
# The compiled .mo files are committed; a test fails when one is out of date.
set -e
cd "$(dirname "$0")"
PYBABEL="${PYBABEL:-../../.venv/bin/pybabel}"
"$PYBABEL" compile --use-fuzzy -d verification/translations
