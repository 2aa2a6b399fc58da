// Renders the portal's own OpenAPI document with the vendored Swagger UI (no CDN).
window.addEventListener("load", function () {
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    tryItOutEnabled: false,
    validatorUrl: null,  // no badge fetched from an outside validator (and the CSP would refuse it)
  });
});
