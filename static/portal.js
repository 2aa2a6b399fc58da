// Ask before any form (or the button that sends it) marked data-confirm is sent (destructive or
// final actions).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var message = (button && button.getAttribute("data-confirm")) ||
    event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) { event.preventDefault(); }
});

// The header's menu button (templates/base.html): opens and closes the menu below 1200 px.
// Without this script the button is a link to #main-menu, which the stylesheet shows.
document.querySelectorAll("[data-menu-toggle]").forEach(function (toggle) {
  var menu = document.getElementById(toggle.getAttribute("aria-controls"));
  if (!menu) { return; }
  var flip = function (event) {
    event.preventDefault();
    var open = !menu.classList.contains("show");
    menu.classList.toggle("show", open);
    toggle.setAttribute("aria-expanded", String(open));
  };
  toggle.addEventListener("click", flip);
  // A link playing a button (role="button") answers the space bar too.
  toggle.addEventListener("keydown", function (event) { if (event.key === " ") { flip(event); } });
});

// Menu groups ("More", "Administration") are <details>: one open at a time, closed by Esc or a
// click elsewhere.
(function () {
  var groups = Array.prototype.slice.call(document.querySelectorAll(".nav-group details"));
  groups.forEach(function (group) {
    group.addEventListener("toggle", function () {
      if (group.open) { groups.forEach(function (g) { if (g !== group) { g.open = false; } }); }
    });
  });
  document.addEventListener("click", function (event) {
    groups.forEach(function (g) { if (g.open && !g.contains(event.target)) { g.open = false; } });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    groups.forEach(function (g) {
      if (g.open) { g.open = false; g.querySelector("summary").focus(); }
    });
  });
})();

// Lists read as cards on a phone (portal.css): each cell is labelled with its column's header.
document.querySelectorAll("main table.table").forEach(function (table) {
  if (!table.tHead || !table.tHead.rows.length) { return; }
  var names = [];
  var header = table.tHead.rows[table.tHead.rows.length - 1];
  Array.prototype.forEach.call(header.cells, function (cell) {
    for (var i = 0; i < cell.colSpan; i++) { names.push(cell.textContent.trim()); }
  });
  Array.prototype.forEach.call(table.tBodies, function (body) {
    Array.prototype.forEach.call(body.rows, function (row) {
      var column = 0;
      Array.prototype.forEach.call(row.cells, function (cell) {
        if (!cell.hasAttribute("data-label") && row.cells.length > 1) {
          cell.setAttribute("data-label", names[column] || "");
        }
        column += cell.colSpan;
      });
    });
  });
});

// A form sent back with errors: the keyboard starts on the first field to correct (each field
// says what is wrong through aria-describedby, templates/macros/forms.html).
(function () {
  var first = document.querySelector("main [aria-invalid='true']");
  if (first && typeof first.focus === "function") { first.focus(); }
})();
