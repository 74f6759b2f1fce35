"""Email templates (a package so that a non-editable install ships the .txt files)."""
