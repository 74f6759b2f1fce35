/* Type-to-filter for the unit picker: a text box above the <select> hides the options (and
   emptied groups) whose name does not contain what was typed. Without JavaScript the grouped
   <select> works alone. The box's label comes from the select's data-filter-label. */
(function () {
  "use strict";
  var select = document.getElementById("unit");
  if (!select) { return; }
  var box = document.createElement("input");
  box.type = "search";
  box.id = "unit-filter";
  box.setAttribute("aria-controls", "unit");
  box.setAttribute("aria-label", select.getAttribute("data-filter-label") || "");
  box.placeholder = select.getAttribute("data-filter-label") || "";
  select.parentNode.insertBefore(box, select);
  box.addEventListener("input", function () {
    var needle = box.value.trim().toLowerCase();
    var groups = select.querySelectorAll("optgroup");
    Array.prototype.forEach.call(select.options, function (option) {
      if (!option.value) { return; }
      var group = option.parentNode.tagName === "OPTGROUP" ? option.parentNode.label.toLowerCase() : "";
      option.hidden = needle !== "" && option.text.toLowerCase().indexOf(needle) < 0 && group.indexOf(needle) < 0;
    });
    Array.prototype.forEach.call(groups, function (group) {
      group.hidden = !Array.prototype.some.call(group.children, function (o) { return !o.hidden; });
    });
    var shown = Array.prototype.filter.call(select.options, function (o) { return o.value && !o.hidden; });
    select.size = needle ? Math.min(Math.max(shown.length, 2), 10) : 0;
  });
}());
