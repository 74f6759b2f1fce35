"""The reporter's unit picker with the election commission's 557 units: grouped by parent without
JavaScript, and filtered as the reporter types when JavaScript runs (headless Chromium)."""
import csv
from pathlib import Path

from jinja2 import Template

from intake import unit_picker

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "examples" / "election-commission-units.csv"
SCRIPT = (ROOT / "services" / "intake" / "intake" / "static" / "unit-filter.js").read_text()


def example_units():
    with EXAMPLE.open() as handle:
        return [{"code": r["code"], "name": r["name"], "parent": r["parent"] or None} for r in csv.DictReader(handle)]


def test_units_are_grouped_under_their_parent():
    groups = unit_picker.groups(example_units())
    assert groups[0]["label"] is None and [u["code"] for u in groups[0]["units"]] == ["itama-kpu"]
    aceh = next(g for g in groups if g["label"] == "KPU Provinsi Aceh")
    assert len(aceh["units"]) == 23 and aceh["units"][0]["name"] == "KPU Kabupaten/Kota Aceh 01"
    assert sum(len(g["units"]) for g in groups) == 557
    assert unit_picker.groups([{"code": "x", "name": "X", "parent": "gone"}]) == [
        {"label": None, "units": [{"code": "x", "name": "X"}]}]


PAGE = Template("""<!doctype html><html><body><form>
<select id="unit" name="unit" data-filter-label="Ketik untuk mencari unit Anda"><option value="">pilih</option>
{% for g in groups %}{% if g.label %}<optgroup label="{{ g.label }}">{% endif %}
{% for u in g.units %}<option value="{{ u.code }}">{{ u.name }}</option>{% endfor %}
{% if g.label %}</optgroup>{% endif %}{% endfor %}</select></form><script>{{ script }}</script></body></html>""")


def test_typing_filters_the_grouped_list(chromium, tmp_path, request):
    from tests.browser import screenshot

    page = tmp_path / "picker.html"
    page.write_text(PAGE.render(groups=unit_picker.groups(example_units()), script=SCRIPT))
    chromium.get(page.as_uri())
    box = chromium.find_element("id", "unit-filter")
    assert box.get_attribute("placeholder") == "Ketik untuk mencari unit Anda"
    box.send_keys("jawa tengah")
    visible = chromium.execute_script(
        "return Array.from(document.querySelectorAll('#unit option')).filter(o => o.value && !o.hidden).map(o => o.text)")
    assert len(visible) == 36 and all("Jawa Tengah" in v for v in visible)   # the province and its 35
    hidden_groups = chromium.execute_script("return document.querySelectorAll('#unit optgroup[hidden]').length")
    assert hidden_groups == 40                 # all but its region and its own group
    box.clear()
    box.send_keys("aceh")
    visible = chromium.execute_script(
        "return Array.from(document.querySelectorAll('#unit option')).filter(o => o.value && !o.hidden).length")
    assert visible == 24                      # the province and its 23 regencies/cities
    screenshot(chromium, request, "unit-picker-filtered")
