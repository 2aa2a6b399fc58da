// The filter bars' partner box: offers the partners matching what is typed (their code, the
// name beside it) from /bank/partners/lookup. Without this script the box takes a code as typed.
(function () {
  "use strict";
  document.querySelectorAll("input[data-partner-lookup]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    var url = input.getAttribute("data-partner-lookup");
    var timer = null;
    var asked = "";
    if (!list || !url) {
      return;
    }
    function fill(partners) {
      list.replaceChildren();
      partners.forEach(function (p) {
        var option = document.createElement("option");
        option.value = p.code;
        option.label = p.name + " (" + p.code + ")";
        option.textContent = p.name + " (" + p.code + ")";
        list.appendChild(option);
      });
    }
    function ask() {
      var text = input.value.trim();
      if (!text || text === asked) {
        return;
      }
      asked = text;
      fetch(url + "?q=" + encodeURIComponent(text), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      }).then(function (response) {
        return response.ok ? response.json() : [];
      }).then(function (partners) {
        if (input.value.trim() === text) {
          fill(partners);
        }
      }).catch(function () { /* the box still takes a typed code */ });
    }
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, 200);
    });
  });
})();
