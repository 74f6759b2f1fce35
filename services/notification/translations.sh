#!/bin/sh
# Rebuild notification's catalogues after editing a shipped email template (notification/templates/<kind>.txt):
#   extract the {% trans %} texts, merge them into each language's .po, compile the .mo files.
# Then translate any new msgid in notification/translations/id/LC_MESSAGES/messages.po and run again
# (the English texts are the msgids themselves). The compiled .mo files are committed; a test
# fails when a .mo is out of date, the .pot misses a text of the templates, or an Indonesian
# translation is missing.
set -e
cd "$(dirname "$0")"
PYBABEL="${PYBABEL:-../../.venv/bin/pybabel}"
"$PYBABEL" extract -F babel.cfg --no-location --sort-output --omit-header -o notification/translations/messages.pot .
for lang in id en; do
  if [ -f "notification/translations/$lang/LC_MESSAGES/messages.po" ]; then
    "$PYBABEL" update --no-fuzzy-matching --ignore-obsolete --omit-header -i notification/translations/messages.pot -d notification/translations -l "$lang"
  else
    "$PYBABEL" init -i notification/translations/messages.pot -d notification/translations -l "$lang"
  fi
done
"$PYBABEL" compile --use-fuzzy -d notification/translations
