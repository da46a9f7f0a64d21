// Clientbase page behaviour; no inline scripts, so the content security policy stays strict.
document.addEventListener("htmx:responseError", function (event) {
  const status = event.detail.xhr.status;
  const alert = document.createElement("div");
  alert.className = "alert alert-danger";
  alert.setAttribute("role", "alert");
  // The texts come translated from data attributes on <body>.
  const texts = document.body.dataset;
  alert.textContent = status === 403 ? texts.msgForbidden : texts.msgFailed + " (" + status + ")";
  const main = document.querySelector("main");
  if (main) main.prepend(alert);
});

// Close the search suggestions when the user clicks elsewhere or presses Escape.
document.addEventListener("click", function (event) {
  const box = document.getElementById("search-suggestions");
  if (box && !event.target.closest("form[role=search]")) box.innerHTML = "";
});
document.addEventListener("keydown", function (event) {
  const box = document.getElementById("search-suggestions");
  if (box && event.key === "Escape") box.innerHTML = "";
});

// The client form shows a person's or a company's fields as the kind changes.
function showFieldsOfKind(form) {
  const kind = form.querySelector("select[name=kind]");
  if (!kind) return;
  form.querySelectorAll("[data-kind-only]").forEach(function (block) {
    if (block.tagName === "INPUT" || block.tagName === "SELECT") return;
    block.hidden = block.dataset.kindOnly !== kind.value;
  });
}
document.querySelectorAll("form.client-form").forEach(function (form) {
  showFieldsOfKind(form);
  form.addEventListener("change", function (event) {
    if (event.target.name === "kind") showFieldsOfKind(form);
  });
});
