#!/bin/sh
# Rebuild intake's catalogues after editing a template or a marked string:
#   extract the strings, merge them into each language's .po, compile the .mo files.
# Then translate any new msgid in intake/translations/id/LC_MESSAGES/messages.po and run again.
# The compiled .mo files are committed (a fresh clone needs no build step); a test fails when a
# .mo is out of date or an Indonesian translation is missing.
set -e
cd "$(dirname "$0")"
PYBABEL="${PYBABEL:-../../.venv/bin/pybabel}"
"$PYBABEL" extract -F babel.cfg -k N_ --no-location --sort-output --omit-header -o intake/translations/messages.pot .
for lang in id en; do
  if [ -f "intake/translations/$lang/LC_MESSAGES/messages.po" ]; then
    "$PYBABEL" update --no-fuzzy-matching --ignore-obsolete --omit-header -i intake/translations/messages.pot -d intake/translations -l "$lang"
  else
    "$PYBABEL" init -i intake/translations/messages.pot -d intake/translations -l "$lang"
  fi
done
"$PYBABEL" compile --use-fuzzy -d intake/translations
