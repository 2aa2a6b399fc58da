// The idle timeout, seen from the browser (templates/base.html), and the new referral's draft.
(function () {
  "use strict";
  var body = document.body;

  // ---- The draft of a new referral (templates/partner/new_referral.html) ---------------------
  // Kept in sessionStorage: this tab only, gone when the tab closes, never sent anywhere. The
  // buyer's ID number and mobile are never written (the bank keeps them encrypted; a shared
  // office computer must not hold them in clear), nor the consent box (ticked again, knowingly),
  // nor the CSRF token. The draft survives a timeout and the login after it; any other page
  // reached logged in (the new referral's own page after a successful submit, or leaving the
  // form) removes it.
  var DRAFT_PREFIX = "portal.draft.";
  var draftForm = document.querySelector("form[data-draft]");

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  var never = ((draftForm && draftForm.getAttribute("data-draft-never")) || "").split(/\s+/);

  function kept(field) {
    return field.name && field.type !== "hidden" && field.type !== "file" &&
      field.type !== "password" && field.type !== "submit" && field.type !== "checkbox" &&
      never.indexOf(field.name) < 0;
  }

  if (draftForm && storage()) {
    var key = DRAFT_PREFIX + draftForm.getAttribute("data-draft");
    var saved = null;
    try { saved = JSON.parse(storage().getItem(key) || "null"); } catch (e) { saved = null; }
    // Only into a fresh form: a form the server sent back with errors holds what was typed.
    var fresh = !draftForm.querySelector("[aria-invalid='true']") &&
      !document.querySelector("[data-testid=intake-message]");
    if (saved && fresh) {
      var restored = false;
      Array.prototype.forEach.call(draftForm.elements, function (field) {
        if (kept(field) && Object.prototype.hasOwnProperty.call(saved, field.name) &&
            saved[field.name] !== "" && field.value !== saved[field.name]) {
          field.value = saved[field.name];
          restored = true;
        }
      });
      var notice = document.querySelector("[data-draft-restored]");
      if (restored && notice) { notice.hidden = false; }
    }
    var save = function () {
      var values = {};
      Array.prototype.forEach.call(draftForm.elements, function (field) {
        if (kept(field)) { values[field.name] = field.value; }
      });
      try { storage().setItem(key, JSON.stringify(values)); } catch (e) { /* full or off */ }
    };
    draftForm.addEventListener("input", save);
    draftForm.addEventListener("change", save);
    draftForm.addEventListener("submit", save);
  } else if (body.hasAttribute("data-idle-minutes") && storage()) {
    // Logged in, somewhere else than the form: the draft has served its purpose.
    for (var i = storage().length - 1; i >= 0; i--) {
      var name = storage().key(i);
      if (name && name.indexOf(DRAFT_PREFIX) === 0) { storage().removeItem(name); }
    }
  }

  // ---- The idle timeout (IDLE_TIMEOUT_MINUTES, in body[data-idle-minutes]) ------------------
  var minutes = parseInt(body.getAttribute("data-idle-minutes") || "0", 10);
  var dialog = document.querySelector("dialog.idle-warning");
  if (!(minutes > 0) || !dialog) { return; }
  // The server notes activity at most once a minute (services/accounts.py: load_session), so its
  // clock may have started up to a minute before this page: count from a minute earlier.
  var timeout = minutes * 60000 - 60000;
  var warnBefore = Math.min(120000, Math.max(30000, timeout / 4));
  var SEEN = "portal.lastActive";  // shared by the user's tabs: activity in one keeps all alive
  var loadedAt = Date.now();
  var left = dialog.querySelector("[data-idle-left]");
  var stay = dialog.querySelector("[data-stay-signed-in]");

  function note(at) {
    try { window.localStorage.setItem(SEEN, String(at)); } catch (e) { /* private mode */ }
  }
  function lastSeen() {
    var other = 0;
    try { other = parseInt(window.localStorage.getItem(SEEN) || "0", 10) || 0; } catch (e) { other = 0; }
    return Math.max(loadedAt, other);
  }
  // Time is up: end the session here and now (it may have a few seconds left on the server,
  // which must not keep a page of buyers' data open), then say why on the login page.
  var ended = false;
  function expired() {
    if (ended) { return; }
    ended = true;
    var next = window.location.pathname + window.location.search;
    var login = body.getAttribute("data-login-url") + "?reason=expired&next=" +
      encodeURIComponent(next);
    var form = new FormData();
    form.append("csrf_token", body.getAttribute("data-csrf-token"));
    fetch(body.getAttribute("data-logout-url") + "?reason=expired", {
      method: "POST", credentials: "same-origin", body: form
    }).catch(function () { return null; }).then(function () { window.location.assign(login); });
  }
  function show(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    if (left) { left.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); }
    if (!dialog.open) {
      if (typeof dialog.showModal === "function") { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
      if (stay) { stay.focus(); }
    }
  }
  function hide() {
    if (dialog.open) {
      if (typeof dialog.close === "function") { dialog.close(); } else { dialog.removeAttribute("open"); }
    }
  }
  function tick() {
    var remaining = lastSeen() + timeout - Date.now();
    if (remaining <= 0) { expired(); return; }
    if (remaining <= warnBefore) { show(remaining); } else { hide(); }
  }
  note(loadedAt);
  if (stay) {
    stay.addEventListener("click", function () {
      fetch(body.getAttribute("data-keep-alive-url"), {
        method: "POST", credentials: "same-origin",
        headers: {"X-CSRFToken": body.getAttribute("data-csrf-token"), "Accept": "application/json"}
      }).then(function (response) {
        // An ended session is answered with the login page: nothing left to keep alive.
        if (!response.ok || response.redirected) { expired(); return; }
        loadedAt = Date.now();
        note(loadedAt);
        hide();
      }).catch(function () { /* offline: the warning stays and counts down */ });
    });
  }
  dialog.addEventListener("cancel", function (event) { event.preventDefault(); });
  window.setInterval(tick, 1000);
})();
