// The new-referral form: the asset fields (property or vehicle) are required only for the
// products secured on what the buyer buys. The server marks them for the product it knows of;
// this keeps `required`/`aria-required` and their visibility in step with the product chosen.
(function () {
  'use strict';
  const form = document.querySelector('[data-intake-form]');
  const data = document.getElementById('product-asset-kinds');
  if (!form || !data) return;
  const kinds = JSON.parse(data.textContent);
  const product = form.querySelector('select[name="product"]');
  const group = form.querySelector('[data-asset-fields]');
  if (!product || !group) return;

  function update() {
    const kind = kinds[product.value];
    const needed = kind === 'property' || kind === 'vehicle';
    // No product chosen yet: show the fields (their help says when they are needed).
    group.hidden = Boolean(product.value) && !needed;
    group.querySelectorAll('input, textarea, select').forEach(function (input) {
      input.required = needed;
      if (needed) input.setAttribute('aria-required', 'true');
      else input.removeAttribute('aria-required');
    });
  }
  product.addEventListener('change', update);
  update();
})();
