// Several photos for one item: each time the camera input gets a photo, an empty one is added
// after it, so the partner can take the next page before sending them all together.
(function () {
  "use strict";
  function more(input) {
    input.addEventListener("change", function () {
      if (!input.files || !input.files.length || input.dataset.followed) {
        return;
      }
      input.dataset.followed = "1";
      var next = input.cloneNode(false);
      next.value = "";
      delete next.dataset.followed;
      next.id = input.id + "-" + Date.now();
      if (input.labels && input.labels.length) {
        next.setAttribute("aria-label", input.labels[0].textContent);
      }
      input.insertAdjacentElement("afterend", next);
      more(next);
    });
  }
  document.querySelectorAll("input[type=file][data-camera]").forEach(more);
})();
