/* Scorecard charts: each <canvas data-chart="ID"> is drawn from the Chart.js configuration the
   server wrote (labels already translated) into <script type="application/json" id="ID">. */
(function () {
  'use strict';
  if (typeof Chart === 'undefined') { return; }
  document.querySelectorAll('canvas[data-chart]').forEach(function (canvas) {
    var source = document.getElementById(canvas.getAttribute('data-chart'));
    if (!source) { return; }
    try {
      new Chart(canvas, JSON.parse(source.textContent));
    } catch (e) {
      canvas.replaceWith(document.createTextNode(''));
    }
  });
})();
