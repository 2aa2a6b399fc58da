/* An import job's page: poll its progress while it runs (the URL is in data-progress-url),
   update the counts and the bar, and reload the page when the job ends so the summary, the
   rejected rows and their CSV show. */
(function () {
  'use strict';
  var box = document.querySelector('[data-progress-url]');
  if (!box || box.getAttribute('data-finished') === 'true') { return; }
  var url = box.getAttribute('data-progress-url');
  var statusField = box.querySelector('[data-field="status"]');
  var labels = {};
  try { labels = JSON.parse(statusField.getAttribute('data-labels') || '{}'); } catch (e) { labels = {}; }

  function show(p) {
    ['rows_done', 'created', 'updated', 'skipped', 'rejected'].forEach(function (name) {
      var field = box.querySelector('[data-field="' + name + '"]');
      if (field) { field.textContent = String(p[name]); }
    });
    var total = box.querySelector('[data-field="total_rows"]');
    if (total && p.total_rows !== null) { total.textContent = String(p.total_rows); }
    var bar = box.querySelector('[data-field="bar"]');
    if (bar) { bar.value = p.percent; bar.textContent = p.percent + '%'; }
    statusField.textContent = labels[p.status] || p.status;
  }

  function poll() {
    fetch(url, {headers: {'Accept': 'application/json'}, credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (p) {
        show(p);
        if (p.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });  // 503 while the database restarts
  }
  window.setTimeout(poll, 1000);
})();
